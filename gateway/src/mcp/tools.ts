/**
 * The tools every caller has: searching the knowledge it may read, asking a question answered from it, and
 * following a workflow run. Each is one or more GraphQL operations of the caller (graphql.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { succeeded, ToolFailure, type GraphQLCaller, type GraphQLErrorShape } from './graphql.ts';

export interface ToolContext {
  graphql: GraphQLCaller;
  /** Aborted when the client goes away or cancels the call. */
  signal: AbortSignal;
}

export interface FixedTool {
  definition: Tool;
  call(args: unknown, context: ToolContext): Promise<CallToolResult>;
}

/** A tool whose arguments are checked against `input`, which also gives its advertised JSON Schema. */
function tool<S extends z.ZodObject>(
  definition: Omit<Tool, 'inputSchema'>,
  input: S,
  call: (args: z.output<S>, context: ToolContext) => Promise<CallToolResult>,
): FixedTool {
  return {
    definition: { ...definition, inputSchema: z.toJSONSchema(input, { io: 'input' }) as Tool['inputSchema'] },
    async call(args, context) {
      const parsed = input.safeParse(args ?? {});
      if (!parsed.success) {
        throw new ToolFailure(parsed.error.issues.map((issue) => ({ message: `${issue.path.join('.') || 'arguments'}: ${issue.message}`, extensions: { code: 'BAD_USER_INPUT' } })));
      }
      return call(parsed.data, context);
    },
  };
}

const knowledgeBaseIds = z.array(z.string().min(1)).optional();

const SEARCH = `query McpSearchKnowledge($query: String!, $knowledgeBaseIds: [ID!], $topK: Int!) {
  search(query: $query, knowledgeBaseIds: $knowledgeBaseIds, topK: $topK, mode: HYBRID) {
    id text score sectionPath document { id title } knowledgeBase { id name }
  }
}`;

const searchKnowledge = tool(
  {
    name: 'search_knowledge',
    title: 'Search knowledge',
    description: 'The passages best matching a query (words and meaning, fused), from the knowledge bases you may read, best first, each with its document and knowledge base.',
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  z.object({
    query: z.string().min(1).describe('What to look for'),
    knowledgeBaseIds: knowledgeBaseIds.describe('Only these knowledge bases; every one you may read when omitted'),
    topK: z.int().min(1).max(50).default(10).describe('How many passages at most'),
  }),
  async ({ query, knowledgeBaseIds, topK }, { graphql }) => {
    const { value, errors } = await graphql.field<unknown[]>(SEARCH, { query, knowledgeBaseIds, topK }, 'search');
    return succeeded({ passages: value ?? [] }, { errors });
  },
);

const RUN = `query McpRun($id: ID!) { run(id: $id) { id status output error { code message } pendingApproval { step } } }`;

const getRun = tool(
  {
    name: 'get_run',
    title: 'Get a workflow run',
    description: "A workflow run's status (RUNNING, WAITING for an approval, DONE, ERROR, CANCELLED), its output once DONE and its error once ERROR.",
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  z.object({ runId: z.string().min(1).describe('The runId a workflow tool answered with') }),
  async ({ runId }, { graphql }) => {
    const { value, errors } = await graphql.field<Record<string, unknown>>(RUN, { id: runId }, 'run');
    if (!value) throw new ToolFailure([{ message: `your tenant has no run ${runId}`, extensions: { code: 'NOT_FOUND' } }]);
    return succeeded(value, { errors });
  },
);

const ASK = `mutation McpAsk($input: AskInput!) { ask(input: $input) { conversation { id } answer { id } } }`;
const ANSWER = `query McpAnswer($id: ID!) {
  conversation(id: $id) {
    messages(last: 2) { id status content error model citations { n passageId title text document { id } knowledgeBase { id } } }
  }
}`;

/** How long `ask` waits for the answer to be written, and how often it looks. */
// Under the MCP SDK clients' default request timeout (60 s), so that they get this answer rather than their own.
const ANSWER_DEADLINE_MS = 55_000;
const FIRST_LOOK_MS = 200;
// Each look is a metered GraphQL request of the caller: looking less often as the wait grows keeps a slow
// answer from costing hundreds of them.
const LATEST_LOOK_MS = 1_000;

interface AnswerMessage {
  id: string;
  status: 'STREAMING' | 'DONE' | 'ERROR' | 'CANCELLED';
  content: string;
  error: string | null;
  model: string | null;
  citations: unknown[];
}

const ask = tool(
  {
    name: 'ask',
    title: 'Ask',
    description: 'Answers a question from the knowledge bases you may read, citing the passages it used as [n]. Waits up to 55 s for the answer.',
    annotations: { readOnlyHint: false, openWorldHint: false },
  },
  z.object({
    question: z.string().min(1).describe('The question'),
    knowledgeBaseIds: knowledgeBaseIds.describe('Answer from these knowledge bases only; every one you may read when omitted'),
  }),
  async ({ question, knowledgeBaseIds }, { graphql, signal }) => {
    const { value: asked } = await graphql.field<{ conversation: { id: string }; answer: { id: string } }>(ASK, { input: { question, knowledgeBaseIds } }, 'ask');
    if (!asked) throw new ToolFailure([{ message: 'the question was not taken', extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
    const { conversation, answer } = asked;
    const deadline = Date.now() + ANSWER_DEADLINE_MS;
    for (let wait = FIRST_LOOK_MS; ; wait = Math.min(LATEST_LOOK_MS, Math.round(wait * 1.5))) {
      await sleep(wait, undefined, { signal });
      const { value, errors } = await graphql.field<{ messages: AnswerMessage[] }>(ANSWER, { id: conversation.id }, 'conversation');
      const message = value?.messages.find((candidate) => candidate.id === answer.id);
      if (message && message.status !== 'STREAMING') return answered(conversation.id, message, errors);
      if (Date.now() + wait > deadline) {
        throw new ToolFailure([{ message: `the answer was still being written after ${ANSWER_DEADLINE_MS / 1000} s (message ${answer.id} of conversation ${conversation.id})`, extensions: { code: 'DEADLINE_EXCEEDED' } }]);
      }
    }
  },
);

function answered(conversationId: string, message: AnswerMessage, errors: GraphQLErrorShape[]): CallToolResult {
  if (message.status !== 'DONE') {
    throw new ToolFailure([{ message: message.error ?? `the answer ended ${message.status}`, extensions: { code: `ANSWER_${message.status}` } }]);
  }
  return succeeded({ answer: message.content, citations: message.citations, model: message.model, conversationId, messageId: message.id }, { errors });
}

export const FIXED_TOOLS: ReadonlyMap<string, FixedTool> = new Map([searchKnowledge, ask, getRun].map((fixed) => [fixed.definition.name, fixed]));
