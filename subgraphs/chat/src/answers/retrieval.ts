/**
 * Passages for an answer, from the knowledge subgraph's search, asked as the caller (the gateway-signed
 * principal, re-signed by this subgraph with the same secret): the caller's own access rules decide what an
 * answer can draw on.
 */
import type { Principal } from '@jarvis/platform/contracts';
import { SubgraphRequestError, type SubgraphClient } from '@jarvis/platform/subgraph-client';
import type { StoredCitation } from '../messages/store.ts';

const SEARCH = `query($query: String!, $knowledgeBaseIds: [ID!], $topK: Int!) {
  search(query: $query, knowledgeBaseIds: $knowledgeBaseIds, topK: $topK, mode: HYBRID, rerank: true) {
    id text startOffset endOffset document { id title } knowledgeBase { id }
  }
}`;

interface SearchHit {
  id: string;
  text: string;
  startOffset: number;
  endOffset: number;
  document: { id: string; title: string };
  knowledgeBase: { id: string };
}

/** The port an answer draws its passages from: the caller's own search, which its access rules bound. */
export type Retrieve = (principal: Principal, question: string, knowledgeBaseIds: string[] | null, topK: number) => Promise<StoredCitation[]>;

/** The adapter: the knowledge subgraph's hybrid search with rerank, asked as the caller. */
export function knowledgeRetrieval(knowledge: SubgraphClient): Retrieve {
  return async (principal, question, knowledgeBaseIds, topK) => {
    if (knowledgeBaseIds?.length === 0) return [];
    const { search } = await knowledge.request<{ search: SearchHit[] | null }>(principal, SEARCH, { query: question, knowledgeBaseIds, topK }).catch((error: unknown) => {
      if (error instanceof SubgraphRequestError) throw new RetrievalError(error.message, error.code);
      throw error;
    });
    return (search ?? []).map((hit, i) => ({
      n: i + 1,
      passageId: hit.id,
      title: hit.document.title,
      text: hit.text,
      startOffset: hit.startOffset,
      endOffset: hit.endOffset,
      documentId: hit.document.id,
      knowledgeBaseId: hit.knowledgeBase.id,
    }));
  };
}

export class RetrievalError extends Error {
  override name = 'RetrievalError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}
