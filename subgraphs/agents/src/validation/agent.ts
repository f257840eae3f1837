/**
 * An agent: its instructions, the model it uses or the strategy that picks one, the tools it may use — the
 * tenant's knowledge bases, its published workflows, MCP servers' tools and HTTP endpoints, each listed: nothing
 * else is allowed — and the bounds of a run: a step limit and a token budget.
 */
import { ROUTING_STRATEGIES } from '@jarvis/platform/config';
import { z } from 'zod';
import { DEFAULT_LABEL, definitionName, labelName } from '../definitions/names.ts';
import { finding, pointerOf } from './problems.ts';
import { zodFindings } from './schema-findings.ts';
import { isData, type Checked } from './types.ts';

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

const tools = z.strictObject({
  knowledgeBases: z.array(z.uuid('must be a knowledge base id')).default([]),
  workflows: z.array(z.strictObject({ name: definitionName, label: labelName.default(DEFAULT_LABEL) })).default([]),
  mcp: z.array(z.strictObject({ server: httpUrl, tools: z.array(z.string().min(1).max(128)).min(1, 'name at least one tool') })).default([]),
  http: z.array(z.strictObject({ url: httpUrl, methods: z.array(z.enum(HTTP_METHODS)).min(1).default(['GET']) })).default([]),
});

const agentDocument = z
  .strictObject({
    instructions: z.string().trim().min(1, 'must not be empty').max(20_000, 'at most 20000 characters'),
    model: z.string().min(1).max(200).optional(),
    strategy: z.enum(ROUTING_STRATEGIES).optional(),
    tools: tools.default({ knowledgeBases: [], workflows: [], mcp: [], http: [] }),
    maxSteps: z.number().int('must be a whole number').min(1).max(100),
    tokenBudget: z.number().int('must be a whole number').min(1).max(10_000_000),
  })
  .superRefine((agent, context) => {
    if ((agent.model === undefined) === (agent.strategy === undefined)) {
      context.addIssue({ code: 'custom', path: agent.model ? ['strategy'] : [], message: 'name a model or a routing strategy (COST, LATENCY, QUALITY), not both' });
    }
  });

/** What an agent version declares, kept with it. */
export type AgentDeclaration = z.output<typeof agentDocument>;
export type AgentTools = AgentDeclaration['tools'];

export function checkAgent(document: unknown): Checked<AgentDeclaration> {
  if (!isData(document)) {
    return { findings: [finding([], 'an agent is a YAML mapping with instructions, a model or strategy, tools, maxSteps and tokenBudget')], references: [], declared: undefined };
  }
  const parsed = agentDocument.safeParse(document);
  if (!parsed.success) return { findings: zodFindings(parsed.error), references: [], declared: undefined };
  const references = parsed.data.tools.workflows.map(({ name }, i) => ({ kind: 'WORKFLOW' as const, name, pointer: pointerOf(['tools', 'workflows', i, 'name']) }));
  return { findings: [], references, declared: parsed.data };
}
