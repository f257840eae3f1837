import { createHash } from 'node:crypto';
import type { DocumentStore } from '@apollo/server';
import { LRUCache } from 'lru-cache';
import { GraphQLError, parse, specifiedRules, validate, type DocumentNode, type GraphQLSchema, type ParseOptions, type ValidationRule } from 'graphql';

/** Source characters of the documents kept: what a few thousand console-sized operations take. */
const MAX_SOURCE_CHARS = 4_000_000;

export type Prepared = { document: DocumentNode; queryHash: string } | { errors: readonly GraphQLError[] };

/** The hash Apollo Server keys documents by (its computeQueryHash): sha256 of the text, in hex. */
export const queryHashOf = (query: string) => createHash('sha256').update(query).digest('hex');

/**
 * Documents parsed and validated once, for every transport: WebSocket operations are prepared here, and Apollo
 * Server (HTTP, and the queries and mutations the socket hands it) uses the same cache as its documentStore,
 * so a document is never parsed or validated twice, nor again while it stays cached. An entry holds for the
 * schema it was validated against only.
 */
export function preparedDocuments(schema: () => GraphQLSchema, parseOptions: ParseOptions, validationRules: readonly ValidationRule[], validated: () => void) {
  const rules = [...specifiedRules, ...validationRules];
  const cache = new LRUCache<string, { schema: GraphQLSchema; document: DocumentNode }>({
    maxSize: MAX_SOURCE_CHARS,
    sizeCalculation: ({ document }) => Math.max(1, document.loc?.end ?? 1),
  });
  const current = (queryHash: string) => {
    const entry = cache.get(queryHash);
    return entry?.schema === schema() ? entry.document : undefined;
  };
  // Apollo Server's keys are `<hash of its schema>:<query hash>`; entries here carry their schema instead.
  const hashIn = (key: string) => key.slice(key.lastIndexOf(':') + 1);
  const store: DocumentStore = {
    get: async (key) => current(hashIn(key)),
    set: async (key, document) => {
      validated();
      cache.set(hashIn(key), { schema: schema(), document });
    },
    delete: async (key) => cache.delete(hashIn(key)),
  };

  function prepare(query: string): Prepared {
    const queryHash = queryHashOf(query);
    const known = current(queryHash);
    if (known) return { document: known, queryHash };
    let document: DocumentNode;
    try {
      document = parse(query, parseOptions);
    } catch (error) {
      return { errors: [withCode(error instanceof GraphQLError ? error : new GraphQLError('the document does not parse'), 'GRAPHQL_PARSE_FAILED')] };
    }
    const validatedAgainst = schema();
    const errors = validate(validatedAgainst, document, rules);
    if (errors.length > 0) return { errors: errors.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED')) };
    validated();
    cache.set(queryHash, { schema: validatedAgainst, document });
    return { document, queryHash };
  }

  return { store, prepare };
}

/** The codes Apollo Server gives the same failures over HTTP. */
function withCode(error: GraphQLError, code: 'GRAPHQL_PARSE_FAILED' | 'GRAPHQL_VALIDATION_FAILED'): GraphQLError {
  return new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, extensions: { ...error.extensions, code }, originalError: error.originalError ?? error });
}
