/**
 * Each workflow of the caller's tenant published as `production` is a tool that starts a run of it. The list
 * is read per request, with the caller's own token, so a caller sees exactly the workflows GraphQL shows it.
 */
import { createHash } from 'node:crypto';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { succeeded, ToolFailure, type GraphQLCaller } from './graphql.ts';

export const WORKFLOW_TOOL_PREFIX = 'workflow_';
const LABEL = 'production';
/** What MCP clients accept as a tool name at the strictest (some model APIs among them). */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

// The most definitions one request may list (the agents subgraph's page limit).
const WORKFLOWS = `query McpWorkflows {
  tenant {
    definitions(kind: WORKFLOW, first: 200) {
      id name label(name: "${LABEL}") { version { number workflow { title summary inputSchema } } }
    }
  }
}`;
const WORKFLOW_NAMES = `query McpWorkflowNames { tenant { definitions(kind: WORKFLOW, first: 200) { id name } } }`;
const START = `mutation McpStartRun($input: StartRunInput!) { startRun(input: $input) { id status version { number } } }`;

interface Published {
  id: string;
  name: string;
  label: { version: { number: number; workflow: { title: string | null; summary: string | null; inputSchema: string | null } | null } } | null;
}

/**
 * The tool name of a workflow: `workflow_<name>` when that is a valid name; otherwise its name made valid and
 * shortened, tagged with a hash of its id so that two workflows never share one.
 */
export function workflowToolName(definition: { id: string; name: string }): string {
  const plain = WORKFLOW_TOOL_PREFIX + definition.name;
  if (TOOL_NAME.test(plain)) return plain;
  const tag = createHash('sha256').update(definition.id).digest('hex').slice(0, 8);
  const stem = definition.name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64 - WORKFLOW_TOOL_PREFIX.length - tag.length - 1);
  return `${WORKFLOW_TOOL_PREFIX}${stem}_${tag}`;
}

/** The caller's published workflows as tools; none when it may not read definitions. */
export async function workflowTools(graphql: GraphQLCaller): Promise<Tool[]> {
  const { value } = await graphql.field<{ definitions: Published[] | null }>(WORKFLOWS, {}, 'tenant');
  return (value?.definitions ?? []).flatMap((definition) => {
    const version = definition.label?.version;
    if (!version) return [];
    const inputSchema = toolInputSchema(version.workflow?.inputSchema ?? null);
    if (!inputSchema) return [];
    const { title, summary } = version.workflow ?? {};
    const about = [title, summary].filter(Boolean).join(': ') || `The workflow ${definition.name}.`;
    return [{
      name: workflowToolName(definition),
      title: title ?? definition.name,
      description: `${about}\nStarts a run of the workflow "${definition.name}" (version ${version.number}, label ${LABEL}); the run goes on in the background: follow it with get_run.`,
      inputSchema,
      annotations: { readOnlyHint: false },
    }];
  });
}

/**
 * The workflow's own input schema, which the agents subgraph checks a run's input against. MCP arguments are
 * always an object, so a workflow whose input is anything else cannot be a tool (undefined).
 */
function toolInputSchema(source: string | null): Tool['inputSchema'] | undefined {
  if (source === null) return { type: 'object' };
  let schema: unknown;
  try {
    schema = JSON.parse(source);
  } catch {
    return undefined;
  }
  if (schema === true) return { type: 'object' };
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return undefined;
  const { type } = schema as { type?: unknown };
  if (type !== undefined && type !== 'object') return undefined;
  return { ...(schema as Record<string, unknown>), type: 'object' };
}

/** Starts a run of the workflow the tool stands for, at the version its production label points at. */
export async function startWorkflow(toolName: string, args: Record<string, unknown>, graphql: GraphQLCaller): Promise<CallToolResult> {
  const listed = await graphql.field<{ definitions: { id: string; name: string }[] | null }>(WORKFLOW_NAMES, {}, 'tenant');
  // Definitions the caller may not read come back null, with the reason among the errors.
  if (!listed.value?.definitions && listed.errors.length > 0) throw new ToolFailure(listed.errors);
  const definition = listed.value?.definitions?.find((candidate) => workflowToolName(candidate) === toolName);
  if (!definition) throw new ToolFailure([{ message: `you have no workflow tool named ${toolName}`, extensions: { code: 'NOT_FOUND' } }]);
  const { value: run, errors } = await graphql.field<{ id: string; status: string; version: { number: number } }>(
    START,
    { input: { definitionId: definition.id, label: LABEL, input: args } },
    'startRun',
  );
  if (!run) throw new ToolFailure([{ message: 'the run did not start', extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
  const started = { runId: run.id, status: run.status, workflow: definition.name, version: run.version.number };
  return succeeded(started, { errors, notes: [`The run goes on in the background: follow it with get_run { "runId": "${run.id}" }.`] });
}
