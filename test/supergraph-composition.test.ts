import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SUPERGRAPH_PATH } from '@jarvis/platform';
import { composeSupergraph } from '../scripts/compose.ts';

test('schema/supergraph.graphql is exactly what `npm run compose` makes of the subgraph SDL', () => {
  const committed = readFileSync(SUPERGRAPH_PATH, 'utf8');
  assert.equal(committed, composeSupergraph(), 'the supergraph is stale or was edited by hand: run `npm run compose`');
});
