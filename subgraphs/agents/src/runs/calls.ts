/**
 * The calls a run makes, as the run's caller: knowledge search and model calls through the knowledge and chat
 * subgraphs (server to server, with the caller's principal, so their access rules, budgets and usage apply),
 * HTTP and MCP through the outbound guard, and the tenant's other definitions for sub-workflows and agents.
 * Every failure becomes a WorkflowError with a stable code, so `try`/`catch` can match it.
 */
import type { Principal } from '@jarvis/platform/contracts';
import type { OutboundGuard } from '@jarvis/platform/outbound';
import { SubgraphRequestError, type SubgraphClient } from '@jarvis/platform/subgraph-client';
import { ERROR_TYPES, runtimeError, WorkflowError } from './engine/errors.ts';
import type { CallMeta, CallResult, Calls } from './engine/ports.ts';
import type { AgentDeclaration } from '../validation/index.ts';
import { httpCall } from '../tools/http.ts';
import { mcpCall, mcpListTools } from '../tools/mcp.ts';
import { ToolError } from '../tools/http.ts';

const SEARCH = `query($query: String!, $knowledgeBaseIds: [ID!], $topK: Int!, $mode: SearchMode!, $rerank: Boolean!) {
  search(query: $query, knowledgeBaseIds: $knowledgeBaseIds, topK: $topK, mode: $mode, rerank: $rerank) {
    id text score document { id title } knowledgeBase { id }
  }
}`;

const COMPLETE = `mutation($input: CompletionInput!) {
  complete(input: $input) { content toolCalls { id name arguments } model promptTokens completionTokens cost }
}`;

export interface CompletionMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content?: string | null;
  toolCallId?: string;
  toolCalls?: ToolCall[];
}

export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface ToolSpec {
  name: string;
  description?: string;
  /** JSON Schema of its arguments. */
  parameters: Record<string, unknown>;
}

export interface Completion {
  content: string | null;
  toolCalls: ToolCall[];
  model: string;
  promptTokens: number;
  completionTokens: number;
  cost: number;
}

export interface CompletionRequest {
  idempotencyKey: string;
  messages: CompletionMessage[];
  tools?: ToolSpec[];
  model?: string | undefined;
  strategy?: string | undefined;
  maxTokens?: number | undefined;
}

export interface RunCallsDeps {
  runId: string;
  principal: Principal;
  knowledge: SubgraphClient;
  chat: SubgraphClient;
  guard: OutboundGuard;
  /** A definition of the tenant, by name, at a label or version number: its kind and document. */
  loadDefinition(name: string, version: string | undefined): Promise<{ kind: 'WORKFLOW' | 'AGENT'; document: Record<string, unknown> }>;
}

export class RunCalls implements Calls {
  constructor(private readonly deps: RunCallsDeps) {}

  async call(name: string, args: Record<string, unknown>, meta: CallMeta): Promise<CallResult> {
    switch (name) {
      case 'jarvis.search':
        return { output: { passages: await this.search(args) } };
      case 'jarvis.model':
        return this.model(args, meta);
      case 'jarvis.mcp':
        return { output: await tool(() => mcpCall(this.deps.guard, args as never, { signal: meta.signal })) };
      case 'http':
        return { output: await tool(() => httpCall(this.deps.guard, args as never, meta.signal)) };
      default:
        throw runtimeError(`Jarvis makes no ${name} calls`, 'UNSUPPORTED_CALL');
    }
  }

  async loadWorkflow(name: string, version: string | undefined): Promise<Record<string, unknown>> {
    const loaded = await this.deps.loadDefinition(name, version);
    if (loaded.kind !== 'WORKFLOW') throw runtimeError(`${name} is an agent, not a workflow`, 'NOT_FOUND');
    return loaded.document;
  }

  async loadAgent(name: string, label: string | undefined): Promise<AgentDeclaration> {
    const loaded = await this.deps.loadDefinition(name, label);
    if (loaded.kind !== 'AGENT') throw runtimeError(`${name} is a workflow, not an agent`, 'NOT_FOUND');
    return loaded.document as unknown as AgentDeclaration;
  }

  async search(args: Record<string, unknown>): Promise<unknown[]> {
    const variables = {
      query: String(args.query),
      knowledgeBaseIds: args.knowledgeBases ?? null,
      topK: args.topK ?? 5,
      mode: args.mode ?? 'HYBRID',
      rerank: args.rerank ?? false,
    };
    const { search } = await subgraph(() => this.deps.knowledge.request<{ search: unknown[] | null }>(this.deps.principal, SEARCH, variables));
    return search ?? [];
  }

  async complete(request: CompletionRequest): Promise<Completion> {
    // Chat takes each tool's JSON Schema as JSON text.
    const tools = request.tools?.map((tool) => ({ ...tool, parameters: JSON.stringify(tool.parameters) }));
    const input = { ...request, tools, source: `run:${this.deps.runId}` };
    const { complete } = await subgraph(() => this.deps.chat.request<{ complete: Completion }>(this.deps.principal, COMPLETE, { input }));
    return complete;
  }

  async listMcpTools(server: string): Promise<ToolSpec[]> {
    const tools = await tool(() => mcpListTools(this.deps.guard, server, {}));
    return tools.map((listed) => ({ name: listed.name, description: listed.description ?? undefined, parameters: (listed.inputSchema ?? { type: 'object' }) as Record<string, unknown> }));
  }

  private async model(args: Record<string, unknown>, meta: CallMeta): Promise<CallResult> {
    const messages: CompletionMessage[] = [];
    if (typeof args.instructions === 'string') messages.push({ role: 'system', content: args.instructions });
    messages.push({ role: 'user', content: String(args.prompt) });
    const completion = await this.complete({
      idempotencyKey: `${this.deps.runId}:${meta.key}`,
      messages,
      model: args.model as string | undefined,
      strategy: args.strategy as string | undefined,
      maxTokens: args.maxTokens as number | undefined,
    });
    const { model, promptTokens, completionTokens, cost } = completion;
    return { output: { text: completion.content ?? '', model, promptTokens, completionTokens, cost }, usage: { model, promptTokens, completionTokens, cost } };
  }
}

/** Another subgraph's refusal as the run's error: QUOTA_EXCEEDED stays QUOTA_EXCEEDED. */
async function subgraph<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    if (!(error instanceof SubgraphRequestError)) throw error;
    const status = STATUS_OF[error.code] ?? 502;
    const type = status === 403 ? ERROR_TYPES.authorization : status === 400 ? ERROR_TYPES.validation : ERROR_TYPES.communication;
    throw new WorkflowError({ type, status, title: error.code, detail: error.message }, error.code);
  }
}

const STATUS_OF: Record<string, number> = { QUOTA_EXCEEDED: 429, RATE_LIMITED: 429, FORBIDDEN: 403, UNAUTHORIZED_FIELD_OR_TYPE: 403, BAD_USER_INPUT: 400, NOT_FOUND: 404 };

async function tool<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof ToolError)) throw error;
    throw new WorkflowError({ type: error.type ?? ERROR_TYPES.communication, status: error.status ?? 502, title: error.code, detail: error.message }, error.code);
  }
}
