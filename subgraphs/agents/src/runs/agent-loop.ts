/**
 * An agent's run: the model is offered the agent's tools (OpenAI-compatible `tools`), each tool call it makes is
 * carried out and its result handed back as a `tool` message, until it answers without one — within the agent's
 * step limit and token budget. Tools, budget and tenant come from the pinned definition and the run's caller;
 * a tool's result is only ever data in a `tool` message, so nothing it says can change them.
 */
import { allowedBy } from '../tools/http.ts';
import type { AgentDeclaration } from '../validation/index.ts';
import type { CompletionMessage, RunCalls, ToolCall, ToolSpec } from './calls.ts';
import { runtimeError, WorkflowError } from './engine/errors.ts';
import type { CallResult, DurableHost, Recorder } from './engine/ports.ts';

/** What a tool result may add to the conversation: enough to use, not enough to drown the context. */
const MAX_TOOL_RESULT_CHARS = 20_000;

interface Tool extends ToolSpec {
  kind: string;
  invoke(args: Record<string, unknown>, signal: AbortSignal): Promise<unknown>;
}

export interface AgentLoopDeps {
  host: DurableHost;
  calls: RunCalls;
  recorder: Recorder;
  runId: string;
  /** Runs one of the tenant's workflows inside this run, its steps under `key`. */
  runWorkflow(name: string, label: string, input: unknown, key: string): Promise<unknown>;
}

export async function runAgent(agent: AgentDeclaration, task: unknown, at: { key: string; path: string }, deps: AgentLoopDeps): Promise<CallResult> {
  const tools = await deps.host.step(`${at.key}/agent/tools`, () => toolSpecs(agent, deps)).then((specs) => bindTools(specs, agent, deps, at.key));
  const messages: CompletionMessage[] = [
    { role: 'system', content: agent.instructions },
    { role: 'user', content: taskText(task) },
  ];
  let used = 0;
  let steps = 0;
  const step = () => {
    steps += 1;
    if (steps > agent.maxSteps) throw runtimeError(`the agent took more than its ${agent.maxSteps} steps`, 'STEP_LIMIT');
    return steps;
  };
  for (;;) {
    const left = agent.tokenBudget - used;
    if (left <= 0) throw new WorkflowError({ type: 'https://jarvis.dev/errors/budget', status: 429, title: 'Token budget spent', detail: `the agent spent its ${agent.tokenBudget} tokens` }, 'TOKEN_BUDGET_EXCEEDED');
    const key = `${at.key}/agent/${step()}`;
    const completion = await recorded(deps.recorder, { key, name: 'model', path: `${at.path}/agent`, kind: 'model', input: null }, async () => {
      const answer = await deps.host.step(key, () =>
        deps.calls.complete({
          idempotencyKey: `${deps.runId}:${key}`,
          messages,
          tools: tools.map(({ name, description, parameters }) => ({ name, description, parameters })),
          model: agent.model,
          strategy: agent.strategy,
          maxTokens: Math.min(left, 4096),
        }),
        { kind: 'model' },
      );
      const { model, promptTokens, completionTokens, cost } = answer;
      return { output: { content: answer.content, toolCalls: answer.toolCalls }, usage: { model, promptTokens, completionTokens, cost }, value: answer };
    });
    used += completion.promptTokens + completion.completionTokens;
    if (completion.toolCalls.length === 0) return { output: { answer: completion.content ?? '', steps, tokens: used } };
    messages.push({ role: 'assistant', content: completion.content, toolCalls: completion.toolCalls });
    for (const call of completion.toolCalls) {
      const toolKey = `${at.key}/agent/${step()}`;
      const tool = tools.find((candidate) => candidate.name === call.name);
      const result = await recorded(deps.recorder, { key: toolKey, name: call.name, path: `${at.path}/agent`, kind: `tool:${tool?.kind ?? 'unknown'}`, input: call.arguments }, async () => {
        // A workflow tool runs its own steps, each checkpointed; any other tool is one step.
        const output =
          tool?.kind === 'workflow' ? await useTool(tool, call, new AbortController().signal) : await deps.host.step(toolKey, (signal) => useTool(tool, call, signal), { kind: `tool:${tool?.kind ?? 'unknown'}` });
        return { output, value: output };
      });
      messages.push({ role: 'tool', toolCallId: call.id, content: JSON.stringify(result).slice(0, MAX_TOOL_RESULT_CHARS) });
    }
  }
}

/** An agent's task: a string, `{ task }`, or any other input as JSON. */
function taskText(task: unknown): string {
  if (typeof task === 'string') return task;
  const given = (task as { task?: unknown } | null)?.task;
  return typeof given === 'string' ? given : JSON.stringify(task ?? null);
}

/** A tool's answer, or what went wrong, as data for the model: a failing tool does not end the run. */
async function useTool(tool: Tool | undefined, call: ToolCall, signal: AbortSignal): Promise<unknown> {
  if (!tool) return { error: `no tool named ${call.name}` };
  let args: Record<string, unknown>;
  try {
    args = JSON.parse(call.arguments || '{}') as Record<string, unknown>;
  } catch {
    return { error: 'the arguments are not JSON' };
  }
  try {
    return { result: await tool.invoke(args, signal) };
  } catch (error) {
    const failure = WorkflowError.from(error);
    if (!failure) throw error;
    return { error: failure.message, code: failure.code };
  }
}

async function recorded<T>(recorder: Recorder, step: Parameters<Recorder['stepStarted']>[0], work: () => Promise<{ output: unknown; usage?: Parameters<Recorder['stepFinished']>[2]; value: T }>): Promise<T> {
  await recorder.stepStarted(step);
  try {
    const { output, usage, value } = await work();
    await recorder.stepFinished(step.key, output, usage);
    return value;
  } catch (error) {
    const failure = WorkflowError.from(error);
    if (failure) await recorder.stepFailed(step.key, { code: failure.code, message: failure.message, path: step.path });
    throw error;
  }
}

interface ListedTool extends ToolSpec {
  kind: 'search' | 'workflow' | 'mcp' | 'http';
  /** Which of the agent's entries it comes from. */
  source: number;
  /** The MCP tool's own name. */
  tool?: string;
}

/** The tools as offered to the model: checkpointed once, as an MCP server's list may change while the run goes on. */
async function toolSpecs(agent: AgentDeclaration, deps: AgentLoopDeps): Promise<ListedTool[]> {
  const specs: ListedTool[] = [];
  if (agent.tools.knowledgeBases.length) {
    specs.push({ kind: 'search', source: 0, name: 'search_knowledge', description: 'Search the knowledge bases for passages about a query', parameters: objectOf({ query: { type: 'string', description: 'what to look for' } }, ['query']) });
  }
  agent.tools.workflows.forEach(({ name }, source) =>
    specs.push({ kind: 'workflow', source, name: toolName(`workflow_${name}`), description: `Run the ${name} workflow`, parameters: objectOf({ input: { type: 'object', description: "the workflow's input" } }, []) }),
  );
  for (const [source, server] of agent.tools.mcp.entries()) {
    const listed = await deps.calls.listMcpTools(server.server);
    for (const tool of listed.filter((candidate) => server.tools.includes(candidate.name))) {
      specs.push({ ...tool, kind: 'mcp', source, tool: tool.name, name: toolName(`mcp${source}_${tool.name}`) });
    }
  }
  agent.tools.http.forEach(({ url, methods }, source) =>
    specs.push({
      kind: 'http',
      source,
      name: `http_${source}`,
      description: `Call ${url} (${methods.join(', ')})`,
      parameters: objectOf({ method: { type: 'string', enum: methods }, url: { type: 'string', description: `a URL matching ${url}` }, body: { type: 'object' } }, ['method', 'url']),
    }),
  );
  return specs;
}

function bindTools(specs: ListedTool[], agent: AgentDeclaration, deps: AgentLoopDeps, key: string): Tool[] {
  return specs.map((spec) => ({
    ...spec,
    invoke: (args, signal) => {
      switch (spec.kind) {
        case 'search':
          return deps.calls.search({ query: String(args.query ?? ''), knowledgeBases: agent.tools.knowledgeBases, topK: 5 });
        case 'workflow': {
          const { name, label } = agent.tools.workflows[spec.source]!;
          return deps.runWorkflow(name, label, args.input ?? {}, `${key}/workflow/${name}`);
        }
        case 'mcp':
          return deps.calls.call('jarvis.mcp', { server: agent.tools.mcp[spec.source]!.server, tool: spec.tool!, arguments: args }, { key, path: key, signal }).then((r) => r.output);
        case 'http': {
          const method = String(args.method ?? 'GET').toUpperCase();
          const url = String(args.url ?? '');
          if (!allowedBy([agent.tools.http[spec.source]!], method, url)) throw runtimeError(`${method} ${url} is not among the agent's HTTP tools`, 'TOOL_NOT_ALLOWED');
          return deps.calls.call('http', { method, endpoint: url, ...(args.body !== undefined && { body: args.body }) }, { key, path: key, signal }).then((r) => r.output);
        }
      }
    },
  }));
}

const objectOf = (properties: Record<string, unknown>, required: string[]) => ({ type: 'object', properties, required, additionalProperties: false });

/** OpenAI function names: letters, digits, _ and -, at most 64. */
const toolName = (name: string) => name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
