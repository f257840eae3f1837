/**
 * Jarvis's tasks, written as the DSL writes custom function calls — `call: jarvis.search` with its arguments under
 * `with:` — and the arguments each takes. The DSL's own `call: http` is Jarvis's HTTP call; a human approval is the
 * DSL's `listen` for a `jarvis.approval` event, with a `timeout`.
 */
import { ROUTING_STRATEGIES } from '@jarvis/platform/config';
import { z } from 'zod';
import { definitionName, labelName } from '../definitions/names.ts';
import { orExpression } from './expressions.ts';

const text = z.string().min(1, 'must not be empty');

export const JARVIS_CALLS = {
  /** Passages from the tenant's knowledge bases, as knowledge's `search` answers them, searched as the run's caller. */
  'jarvis.search': z.strictObject({
    query: text,
    knowledgeBases: orExpression(z.array(z.uuid()), 'a list of knowledge base ids').optional(),
    topK: orExpression(z.number().int().min(1).max(50), 'a whole number from 1 to 50').optional(),
    mode: orExpression(z.enum(['LEXICAL', 'VECTOR', 'HYBRID']), 'LEXICAL, VECTOR or HYBRID').optional(),
    rerank: orExpression(z.boolean(), 'true or false').optional(),
  }),
  /** A model's answer to a prompt: the model named, or the one the routing strategy picks. */
  'jarvis.model': z.strictObject({
    prompt: text,
    instructions: text.optional(),
    model: text.optional(),
    strategy: z.enum(ROUTING_STRATEGIES).optional(),
    maxTokens: orExpression(z.number().int().min(1).max(100_000), 'a whole number from 1 to 100000').optional(),
  }),
  /** A step of one of the tenant's agents: the version its label points at when the step runs. */
  'jarvis.agent': z.strictObject({
    agent: orExpression(definitionName, "the name of one of the tenant's agents"),
    label: labelName.optional(),
    input: z.unknown().optional(),
  }),
  /** A tool of an MCP server. */
  'jarvis.mcp': z.strictObject({
    server: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
    tool: text.max(128, 'at most 128 characters'),
    arguments: orExpression(z.record(z.string(), z.unknown()), 'a mapping of arguments').optional(),
  }),
} as const;

export type JarvisCall = keyof typeof JARVIS_CALLS;

export const isJarvisCall = (name: string): name is JarvisCall => Object.hasOwn(JARVIS_CALLS, name);

/** The DSL's calls Jarvis makes itself. */
export const SPEC_CALLS = ['http'] as const;

/** The DSL's calls Jarvis does not make. */
export const UNSUPPORTED_SPEC_CALLS = ['asyncapi', 'grpc', 'openapi'] as const;

/** Every call a workflow may make, besides the functions it declares under `use.functions`. */
export const CALLS: readonly string[] = [...Object.keys(JARVIS_CALLS), ...SPEC_CALLS];

/** The CloudEvents type of a human's answer to an approval a workflow listens for. */
export const APPROVAL_EVENT = 'jarvis.approval';
