/**
 * What the console sends for a generated typed document: its persisted-document hash (the sha256 of its text,
 * from codegen's manifest), its operation name, and — unless the gateway runs trusted documents only — the exact
 * text that hash covers.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import manifest from '../gql/persisted-documents.json';

const texts: Record<string, string | undefined> = manifest;

export interface PersistedDocument {
  /** sha256 of `text`, lower-case hex: the key of codegen's persisted-documents.json. */
  hash: string;
  operationName: string;
  /** The document as the manifest stores it, so the hash is the hash of exactly what is sent. */
  text: string;
}

interface DocumentWithHash {
  __meta__?: { hash?: string };
  definitions: readonly { kind: string; name?: { value: string } }[];
}

const cache = new WeakMap<object, PersistedDocument>();

export function persisted(document: TypedDocumentNode<unknown, never> | TypedDocumentNode<any, any>): PersistedDocument {
  const known = cache.get(document);
  if (known) return known;
  const { __meta__, definitions } = document as unknown as DocumentWithHash;
  const hash = __meta__?.hash;
  const operationName = definitions.find((definition) => definition.kind === 'OperationDefinition')?.name?.value;
  const text = hash === undefined ? undefined : texts[hash];
  if (!hash || !operationName || text === undefined) throw new Error('not a generated document: run `npm run codegen`');
  const info = { hash, operationName, text };
  cache.set(document, info);
  return info;
}

/** The trusted-documents setting of the page: when on, requests carry hashes and no document text. */
export const trustedDocumentsOnly = (): boolean => window.__JARVIS__?.trustedDocuments === true;

/**
 * The GraphQL request for `document`: `documentId` (GraphQL over HTTP's persisted documents, `sha256:<hex>`) and
 * Apollo's `extensions.persistedQuery` (`sha256Hash`: the hex), plus `query` unless trusted documents are on.
 */
export function requestFor(document: TypedDocumentNode<any, any>, variables: Record<string, unknown> | undefined) {
  const { hash, operationName, text } = persisted(document);
  return {
    operationName,
    ...(trustedDocumentsOnly() ? {} : { query: text }),
    variables: variables ?? {},
    documentId: `sha256:${hash}`,
    extensions: { persistedQuery: { version: 1, sha256Hash: hash } },
  };
}
