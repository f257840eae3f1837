/** What a new definition starts from, and a sample input for a run made from a workflow's input schema. */
import type { DefinitionKind } from '../gql/graphql';

/**
 * A small valid workflow (Serverless Workflow DSL 1.0.0): the document header, an input schema, a `set` task
 * and a `listen` task that waits for a `jarvis.approval`, then what was decided.
 */
export const EXAMPLE_WORKFLOW = `document:
  dsl: '1.0.0'
  namespace: console
  name: expense-approval
  version: '1.0.0'
input:
  schema:
    format: json
    document:
      type: object
      required: [amount]
      properties:
        amount: { type: number }
        reason: { type: string }
do:
  - prepare:
      set:
        amount: \${ .amount }
        reason: \${ .reason // "" }
  - approval:
      listen:
        to:
          one:
            with:
              type: jarvis.approval
  - finish:
      set:
        approved: \${ .data.approved }
`;

/** A small valid agent: instructions, a routing strategy, no tools, and the bounds of a run. */
export const EXAMPLE_AGENT = `instructions: Answer questions about the company's policies, briefly.
strategy: COST
tools:
  knowledgeBases: []
maxSteps: 4
tokenBudget: 5000
`;

export const exampleFor = (kind: DefinitionKind): string => (kind === 'WORKFLOW' ? EXAMPLE_WORKFLOW : EXAMPLE_AGENT);

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  default?: unknown;
}

function sampleOf(schema: JsonSchema | undefined): unknown {
  if (!schema) return null;
  if (schema.default !== undefined) return schema.default;
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'object':
      return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([name, property]) => [name, sampleOf(property)]));
    case 'array':
      return [];
    case 'string':
      return '';
    case 'number':
    case 'integer':
      return 0;
    case 'boolean':
      return false;
    default:
      return null;
  }
}

/**
 * A run's input to start from, as JSON text: for a workflow, each property its input schema (JSON text) names,
 * with an empty value of its type; for an agent, `{ "task": "" }`.
 */
export function sampleInput(kind: DefinitionKind, inputSchema: string | null | undefined): string {
  if (kind === 'AGENT') return JSON.stringify({ task: '' }, null, 2);
  if (!inputSchema) return '{}';
  try {
    return JSON.stringify(sampleOf(JSON.parse(inputSchema) as JsonSchema) ?? {}, null, 2);
  } catch {
    return '{}';
  }
}
