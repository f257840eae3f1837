import type { Finding } from './problems.ts';

export type DefinitionKind = 'WORKFLOW' | 'AGENT';

/** Another definition of the tenant a document names: an agent's workflow tools, a workflow's agent steps. */
export interface Reference {
  kind: DefinitionKind;
  name: string;
  pointer: string;
}

/** A document checked: what is wrong with it, what it refers to, and — when nothing is wrong — what it declares. */
export interface Checked<Declared> {
  findings: Finding[];
  references: Reference[];
  declared: Declared | undefined;
}

/** A YAML mapping, as plain data. */
export type Data = Record<string, unknown>;

export const isData = (value: unknown): value is Data => typeof value === 'object' && value !== null && !Array.isArray(value);
