/**
 * Persisted documents. A manifest of trusted documents (sha256 of the document text → the text, as codegen
 * writes it for first-party frontends) lets a client send a document's hash instead of its text: `documentId`
 * (GraphQL over HTTP's persisted documents) or `extensions.persistedQuery.sha256Hash` (Apollo's shape), over
 * POST, GET or WebSocket. With `trustedOnly`, nothing else runs: an unknown hash and any document text not in
 * the manifest are refused — the production setting for first-party frontends. Without it, other clients may
 * use automatic persisted queries (Apollo Server registers a hash sent with its text, then takes the hash alone).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { AppError, badUserInput, ErrorCode } from '@jarvis/platform/errors';
import type { GatewayPolicy } from './pipeline/policy.ts';

/** The parts of a GraphQL request persisted documents concern, whatever the transport. */
export interface DocumentRequest {
  query?: unknown;
  documentId?: unknown;
  extensions?: unknown;
}

export interface PersistedDocuments {
  /**
   * The document text to run for `request`: from the manifest when it names a trusted one, else its own text
   * (undefined when it has none: an automatic persisted query for Apollo Server to look up). Throws an AppError
   * when the request may not run.
   */
  resolve(request: DocumentRequest): string | undefined;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The manifest at `path` (none when it does not exist and `trustedOnly` is off). */
export function loadPersistedDocuments(path: string | undefined, trustedOnly: boolean): PersistedDocuments {
  if (trustedOnly && (!path || !existsSync(path))) throw new Error(`TRUSTED_DOCUMENTS_ONLY needs the manifest at PERSISTED_DOCUMENTS_PATH (${path ?? 'unset'})`);
  const manifest = path && existsSync(path) ? readManifest(path) : new Map<string, string>();
  return {
    resolve(request) {
      const hash = requestedHash(request);
      const text = typeof request.query === 'string' && request.query !== '' ? request.query : undefined;
      if (hash !== undefined) {
        const trusted = manifest.get(hash);
        if (trusted !== undefined) {
          if (text !== undefined && text !== trusted) throw badUserInput('the document text does not match the persisted document named by its hash', 'query');
          return trusted;
        }
        if (trustedOnly || isDocumentId(request)) throw new AppError(ErrorCode.PERSISTED_QUERY_NOT_IN_LIST, `no trusted document has the hash ${hash}`);
        return text;
      }
      if (trustedOnly && (text === undefined || !manifest.has(sha256(text)))) {
        throw new AppError(ErrorCode.QUERY_NOT_IN_SAFELIST, 'this gateway runs trusted documents only: send the documentId of a document from its manifest');
      }
      return text;
    },
  };
}

function readManifest(path: string): Map<string, string> {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${path}: a persisted documents manifest is a JSON object of hash → document`);
  const manifest = new Map<string, string>();
  for (const [hash, text] of Object.entries(parsed)) {
    if (typeof text !== 'string' || sha256(text) !== hash) throw new Error(`${path}: "${hash}" is not the sha256 of its document`);
    manifest.set(hash, text);
  }
  return manifest;
}

const isDocumentId = (request: DocumentRequest) => typeof request.documentId === 'string';

/** The hash the request names: `documentId` (with or without a `sha256:` prefix) or Apollo's persistedQuery extension. */
function requestedHash(request: DocumentRequest): string | undefined {
  if (typeof request.documentId === 'string') return request.documentId.replace(/^sha256:/, '');
  const persisted = (request.extensions as { persistedQuery?: { sha256Hash?: unknown } } | undefined)?.persistedQuery;
  return typeof persisted?.sha256Hash === 'string' ? persisted.sha256Hash : undefined;
}

/** The policy that says which document a request stands for. */
export function persistedDocumentsPolicy(documents: PersistedDocuments): GatewayPolicy {
  return { name: 'persisted documents', resolveDocument: (request) => documents.resolve(request) };
}
