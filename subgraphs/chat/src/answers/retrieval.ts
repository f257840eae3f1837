/**
 * Passages for an answer, from the knowledge subgraph's search, asked as the caller (the gateway-signed
 * principal, re-signed by this subgraph with the same secret): the caller's own access rules decide what an
 * answer can draw on.
 */
import { postGraphQL, servicePort, PRINCIPAL_HEADER, type Config, type Principal, type PrincipalSigner } from '@jarvis/platform';
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

export type Retrieve = (principal: Principal, question: string, knowledgeBaseIds: string[] | null, topK: number) => Promise<StoredCitation[]>;

export function knowledgeRetrieval(config: Config, signer: PrincipalSigner): Retrieve {
  const url = config.SUBGRAPH_URLS.knowledge ?? `http://${config.HOST}:${servicePort(config, 'knowledge')}/graphql`;
  return async (principal, question, knowledgeBaseIds, topK) => {
    if (knowledgeBaseIds?.length === 0) return [];
    const { status, body } = await postGraphQL<{ search: SearchHit[] | null }>(
      url,
      SEARCH,
      { query: question, knowledgeBaseIds, topK },
      { [PRINCIPAL_HEADER]: await signer.sign(principal) },
    );
    if (body.errors?.length || !body.data) {
      const [first] = body.errors ?? [];
      throw new RetrievalError(first?.message ?? `knowledge search failed (${status})`, String(first?.extensions?.code ?? 'RETRIEVAL_FAILED'));
    }
    return (body.data.search ?? []).map((hit, i) => ({
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
