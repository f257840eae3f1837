/** `npm run compose`: composes schema/<subgraph>.graphql into schema/supergraph.graphql. */
import { writeFileSync } from 'node:fs';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { readSubgraphSdl, SUPERGRAPH_PATH } from '../platform/src/schema.ts';
import { defaultSubgraphUrl, SUBGRAPHS } from '../platform/src/services.ts';

export function composeSupergraph(): string {
  const result = composeServices(
    SUBGRAPHS.map(({ name }) => ({ name, url: defaultSubgraphUrl(name), typeDefs: parse(readSubgraphSdl(name)) })),
  );
  if (result.errors) {
    throw new Error(`composition failed:\n${result.errors.map((error) => `  ${error.message}`).join('\n')}`);
  }
  return result.supergraphSdl.endsWith('\n') ? result.supergraphSdl : `${result.supergraphSdl}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(SUPERGRAPH_PATH, composeSupergraph());
  console.log(`wrote ${SUPERGRAPH_PATH}`);
}
