/**
 * A workflow: a Serverless Workflow 1.0 document (DSL 1.0.0), checked by the SDK against the DSL's schema and
 * then for what Jarvis runs — its own calls with their arguments, the DSL's http call, functions the document
 * declares under `use.functions` — and what it declares: its document header, input and output schemas, calls.
 */
import { CALLS, isJarvisCall, JARVIS_CALLS, UNSUPPORTED_SPEC_CALLS } from './calls.ts';
import { isRuntimeExpression } from './expressions.ts';
import { finding, pointerOf, selfAndAncestors, type Finding } from './problems.ts';
import { zodFindings } from './schema-findings.ts';
import { schemaFindings, TASK_TYPES } from './sdk.ts';
import { isData, type Checked, type Data, type Reference } from './types.ts';

export const DSL_VERSION = '1.0.0';

/** What a workflow version declares, kept with it. */
export interface WorkflowDeclaration {
  dsl: string;
  namespace: string;
  name: string;
  version: string;
  title: string | null;
  summary: string | null;
  /** JSON text of the input's schema (its JSON Schema document, or where it is). */
  inputSchema: string | null;
  outputSchema: string | null;
  calls: string[];
  listens: boolean;
}

export function checkWorkflow(workflow: unknown): Checked<WorkflowDeclaration> {
  if (!isData(workflow)) return refused(finding([], 'a workflow is a YAML mapping with a document header and the tasks to do'));
  const document = workflow.document;
  if (!isData(document)) return refused(finding([], "must have required property 'document'"));
  if (document.dsl !== DSL_VERSION) return refused(finding(['document', 'dsl'], `must be '${DSL_VERSION}': Jarvis reads Serverless Workflow DSL ${DSL_VERSION}`));

  const walk = new TaskWalk(declaredFunctions(workflow));
  walk.list(workflow.do, ['do']);
  for (const [name, task] of Object.entries(functionsOf(workflow))) walk.task(task, ['use', 'functions', name]);
  const explainedAbove = (found: Finding) => selfAndAncestors(found.pointer).some((pointer) => walk.explained.has(pointer));
  const findings = [...schemaFindings(workflow, walk.types).filter((found) => !explainedAbove(found)), ...walk.findings];
  return { findings, references: walk.references, declared: findings.length ? undefined : declaration(document, workflow, walk) };
}

const refused = (found: Finding): Checked<WorkflowDeclaration> => ({ findings: [found], references: [], declared: undefined });

const functionsOf = (workflow: Data): Data => {
  const use = workflow.use;
  return isData(use) && isData(use.functions) ? use.functions : {};
};

const declaredFunctions = (workflow: Data) => new Set(Object.keys(functionsOf(workflow)));

/** Every task of the document, wherever tasks nest: their types, the calls they make, what Jarvis cannot run. */
class TaskWalk {
  readonly findings: Finding[] = [];
  /** Each task's type by its pointer. */
  readonly types = new Map<string, string>();
  /** Pointers whose problems the walk explains better than the schema's errors there. */
  readonly explained = new Set<string>();
  readonly references: Reference[] = [];
  readonly calls = new Set<string>();
  listens = false;

  constructor(private readonly functions: ReadonlySet<string>) {}

  list(tasks: unknown, at: PropertyKey[]): void {
    if (!Array.isArray(tasks)) return; // the schema says what is wrong with it
    tasks.forEach((item, index) => {
      if (isData(item)) for (const [name, task] of Object.entries(item)) this.task(task, [...at, index, name]);
    });
  }

  task(task: unknown, at: PropertyKey[]): void {
    if (!isData(task)) return;
    const type = Object.keys(TASK_TYPES).find((key) => key in task);
    if (!type) return this.explain(finding(at, `not a task: a task is one of ${Object.keys(TASK_TYPES).sort().join(', ')}`, 'key'));
    this.types.set(pointerOf(at), type);
    if (type === 'call') this.call(task, at);
    else if (type === 'do' || type === 'for') this.list(task.do, [...at, 'do']);
    else if (type === 'fork' && isData(task.fork)) this.list(task.fork.branches, [...at, 'fork', 'branches']);
    else if (type === 'try') this.tryTask(task, at);
    else if (type === 'listen') this.listens = true;
    else if (type === 'run') this.subWorkflow(task, at);
    else if (type === 'emit') this.explain(finding([...at, 'emit'], 'Jarvis emits no events: call http or jarvis.mcp instead', 'key'));
  }

  /** A sub-workflow is one of the tenant's workflows, by name, at a label (or a version number) given as `version`. */
  private subWorkflow(task: Data, at: PropertyKey[]): void {
    const run = isData(task.run) ? task.run : {};
    const workflow = run.workflow;
    if (!isData(workflow)) {
      return this.explain(finding([...at, 'run'], "Jarvis runs no containers, shells or scripts: run one of the tenant's workflows (run.workflow) instead", 'key'));
    }
    if (typeof workflow.name === 'string') this.refer('WORKFLOW', workflow.name, [...at, 'run', 'workflow', 'name']);
  }

  private tryTask(task: Data, at: PropertyKey[]): void {
    this.list(task.try, [...at, 'try']);
    if (isData(task.catch)) this.list(task.catch.do, [...at, 'catch', 'do']);
  }

  private call(task: Data, at: PropertyKey[]): void {
    const name = task.call;
    if (typeof name !== 'string') return;
    if (isJarvisCall(name)) {
      this.calls.add(name);
      const args = JARVIS_CALLS[name].safeParse(task.with ?? {});
      if (!args.success) this.explain(...zodFindings(args.error, [...at, 'with']));
      else if (name === 'jarvis.agent') this.refer('AGENT', (args.data as { agent: string }).agent, [...at, 'with', 'agent']);
    } else if (CALLS.includes(name)) {
      this.calls.add(name);
    } else if (!this.functions.has(name)) {
      const message = (UNSUPPORTED_SPEC_CALLS as readonly string[]).includes(name)
        ? `Jarvis does not make ${name} calls: call ${CALLS.join(', ')}`
        : `unknown function '${name}': call ${CALLS.join(', ')}, or a function declared under use.functions`;
      this.explain(finding([...at, 'call'], message));
      this.explained.add(pointerOf([...at, 'with']));
    }
  }

  private refer(kind: Reference['kind'], name: string, at: PropertyKey[]): void {
    if (!isRuntimeExpression(name)) this.references.push({ kind, name, pointer: pointerOf(at) });
  }

  private explain(...found: Finding[]): void {
    this.findings.push(...found);
    for (const { pointer } of found) this.explained.add(pointer);
  }
}

function declaration(document: Data, workflow: Data, walk: TaskWalk): WorkflowDeclaration {
  const optional = (value: unknown) => (typeof value === 'string' ? value : null);
  return {
    dsl: String(document.dsl),
    namespace: String(document.namespace),
    name: String(document.name),
    version: String(document.version),
    title: optional(document.title),
    summary: optional(document.summary),
    inputSchema: schemaOf(workflow.input),
    outputSchema: schemaOf(workflow.output),
    calls: [...walk.calls],
    listens: walk.listens,
  };
}

function schemaOf(io: unknown): string | null {
  if (!isData(io) || !isData(io.schema)) return null;
  return JSON.stringify(io.schema.document ?? io.schema);
}
