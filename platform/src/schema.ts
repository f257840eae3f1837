import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository's `schema/` directory: subgraph SDL, the composed supergraph, client operations. */
export const SCHEMA_DIR = fileURLToPath(new URL('../../schema/', import.meta.url));

export function readSubgraphSdl(name: string): string {
  return readFileSync(`${SCHEMA_DIR}${name}.graphql`, 'utf8');
}

export * from './links.ts';

export const SUPERGRAPH_PATH = `${SCHEMA_DIR}supergraph.graphql`;
