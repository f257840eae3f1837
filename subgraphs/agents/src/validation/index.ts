/** A definition's YAML checked for its kind: problems placed on their line and column, what it declares and names. */
import { checkAgent, type AgentDeclaration } from './agent.ts';
import { inSourceOrder, type Finding, type Problem } from './problems.ts';
import type { Checked, DefinitionKind, Reference } from './types.ts';
import { checkWorkflow, type WorkflowDeclaration } from './workflow.ts';
import { readYaml } from './yaml-source.ts';

export type { Problem } from './problems.ts';
export type { DefinitionKind, Reference } from './types.ts';
export type { AgentDeclaration, AgentTools } from './agent.ts';
export type { WorkflowDeclaration } from './workflow.ts';

/** What a version declares, by its definition's kind. */
export type Declared = { workflow: WorkflowDeclaration } | { agent: AgentDeclaration };

/** Problems reported of one document, at most: enough to go on, however broken it is. */
const MAX_PROBLEMS = 100;

export interface CheckedSource {
  /** Empty when the document is valid, as far as it can be told without the tenant's other definitions. */
  problems: Problem[];
  /** What it declares, when valid. */
  declared: Declared | undefined;
  references: Reference[];
  /** Places a finding of the caller's own (a reference to nothing) in the source. */
  place(finding: Finding): Problem;
}

export function checkSource(kind: DefinitionKind, source: string): CheckedSource {
  const yaml = readYaml(source);
  if (yaml.problems.length > 0) return { problems: yaml.problems, declared: undefined, references: [], place: yaml.place };
  const checked = checkDocument(kind, yaml.value);
  const problems = inSourceOrder(checked.findings.map(yaml.place)).slice(0, MAX_PROBLEMS);
  return { problems, declared: checked.declared, references: checked.references, place: yaml.place };
}

function checkDocument(kind: DefinitionKind, document: unknown): Checked<Declared> {
  if (kind === 'WORKFLOW') {
    const checked = checkWorkflow(document);
    return { ...checked, declared: checked.declared && { workflow: checked.declared } };
  }
  const checked = checkAgent(document);
  return { ...checked, declared: checked.declared && { agent: checked.declared } };
}
