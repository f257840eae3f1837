/**
 * `npm run codegen`: typed documents for frontends from the client documents in schema/operations, checked
 * against the API schema clients see (schema/api.graphql), written to web/src/gql/ with GraphQL Code Generator's
 * client preset. Every operation also gets a persisted-document hash, and web/src/gql/persisted-documents.json
 * maps each hash to the exact document text it is the hash of:
 *
 *   { "<sha256 of the text, 64 lower-case hex digits>": "<document text: the operation and the fragments it uses>" }
 *
 * The gateway runs a document by that hash (`documentId`, with or without a `sha256:` prefix, or Apollo's
 * `extensions.persistedQuery.sha256Hash`); the console sends it with every request. test/frontend-codegen.test.ts
 * fails when a committed file differs from what this config generates.
 */
import { createHash } from 'node:crypto';
import type { CodegenConfig } from '@graphql-codegen/cli';

/** The manifest's key for a document text: its sha256 in hex, without the preset's default `sha256:` prefix. */
export const documentHash = (text: string): string => createHash('sha256').update(text).digest('hex');

const config: CodegenConfig = {
  schema: 'schema/api.graphql',
  documents: ['schema/operations/**/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    'web/src/gql/': {
      preset: 'client',
      presetConfig: {
        // Plain result types (a fragment's fields inline), so components read results without unmasking.
        fragmentMasking: false,
        persistedDocuments: { mode: 'embedHashInDocument', hashPropertyName: 'hash', hashAlgorithm: documentHash },
      },
      // No formatter hooks: the files are exactly what the generator writes, the same on every run, so the test
      // can compare them with a fresh generation.
      config: {
        useTypeImports: true,
        scalars: { DateTime: 'string', Upload: 'File | Blob' },
        enumType: 'string-literal',
      },
    },
  },
};

export default config;
