import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SUPERGRAPH_PATH } from '@jarvis/platform/schema';
import { API_SCHEMA_PATH, apiSchemaSdl, composeSupergraph } from '../scripts/compose.ts';

test('schema/supergraph.graphql is exactly what `npm run compose` makes of the subgraph SDL', () => {
  const committed = readFileSync(SUPERGRAPH_PATH, 'utf8');
  assert.equal(committed, composeSupergraph(), 'the supergraph is stale or was edited by hand: run `npm run compose`');
});

test('schema/api.graphql, what codegen reads, is the API schema of the committed supergraph', () => {
  const committed = readFileSync(API_SCHEMA_PATH, 'utf8');
  assert.equal(committed, apiSchemaSdl(readFileSync(SUPERGRAPH_PATH, 'utf8')), 'the API schema is stale or was edited by hand: run `npm run compose`');
});
