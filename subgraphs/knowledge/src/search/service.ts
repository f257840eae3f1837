/**
 * Search over the knowledge bases a caller may read: lexical (BM25 over chunk terms, in the database),
 * vector (nearest chunk embeddings, in the vector store) or both fused. Access is decided before any store
 * is asked: only readable knowledge bases are searched, and per-document restrictions filter inside each
 * store, so a passage the caller may not read is never a candidate.
 */
import { requireTenant, type Principal } from '@jarvis/platform/contracts';
import type { Database } from '@jarvis/platform/db';
import { badUserInput } from '@jarvis/platform/errors';
import type { Logger } from '@jarvis/platform/logger';
import type { Embedder } from '@jarvis/platform/text';
import { z } from 'zod';
import { checkInput } from '@jarvis/platform/subgraph';
import type { QuerySearchArgs } from '../generated/schema-types.ts';
import * as chunkStore from '../chunks/store.ts';
import * as documents from '../documents/store.ts';
import type { KnowledgeBaseService, VisibleKnowledgeBase } from '../knowledge-bases/service.ts';
import { fuseHybrid } from '../retrieval/fusion.ts';
import type { ScoredId } from '../retrieval/ranking.ts';
import type { Reranker } from '../retrieval/rerank.ts';
import type { VectorStore } from '../vectors/index.ts';

export const SEARCH_MODES = ['LEXICAL', 'VECTOR', 'HYBRID'] as const;
export type SearchMode = (typeof SEARCH_MODES)[number];

const searchChecks = z.object({
  query: z.string().trim().min(1, 'must not be empty').max(4000, 'at most 4000 characters'),
  knowledgeBaseIds: z.array(z.uuid()).max(100, 'at most 100 knowledge bases').nullish(),
  topK: z.number().int().min(1, 'at least 1').max(100, 'at most 100'),
});

/** Candidates each retriever brings for fusion and reranking: a deeper pool than the answer finds more. */
const CANDIDATES = 100;

export interface Passage extends chunkStore.ChunkRow {
  score: number;
  /** Its document's title, which the reranker weighs. */
  title: string;
}

export interface SearchDeps {
  vectors: () => Promise<VectorStore>;
  embedder: Embedder;
  reranker: Reranker;
}

export class SearchService {
  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
    private readonly knowledgeBases: KnowledgeBaseService,
    private readonly deps: SearchDeps,
    private readonly log: Logger,
  ) {}

  async search(asked: QuerySearchArgs): Promise<Passage[]> {
    const tenantId = requireTenant(this.principal);
    const args = checkInput(searchChecks, asked);
    const kbs = await this.readable(tenantId, args.knowledgeBaseIds);
    if (kbs.length === 0) return [];
    const scope = {
      knowledgeBaseIds: kbs.map((kb) => kb.id),
      reader: this.knowledgeBases.readers,
      unrestrictedKnowledgeBaseIds: kbs.filter((kb) => kb.access === 'MANAGE').map((kb) => kb.id),
    };
    const pool = Math.max(CANDIDATES, args.topK);
    const [lexical, vector] = await Promise.all([
      args.mode === 'VECTOR' ? [] : this.lexical(tenantId, scope, args.query, pool),
      args.mode === 'LEXICAL' ? [] : this.vector(tenantId, scope, kbs, args.query, pool),
    ]);
    const ranked = args.mode === 'LEXICAL' ? lexical : args.mode === 'VECTOR' ? vector : fuseHybrid(lexical, vector);
    const candidates = await this.candidates(tenantId, ranked);
    const best = args.rerank ? await this.rerank(args.query, candidates, args.topK) : candidates;
    return best.slice(0, args.topK);
  }

  /** The knowledge bases asked for (all the tenant has when none are named) that the caller may read. */
  private async readable(tenantId: string, ids: string[] | null | undefined): Promise<VisibleKnowledgeBase[]> {
    if (!ids) return this.knowledgeBases.knowledgeBasesOf(tenantId);
    const found = await Promise.all([...new Set(ids)].map((id) => this.knowledgeBases.knowledgeBase(id)));
    const missing = ids.filter((_, i) => !found[i]);
    if (missing.length) throw badUserInput(`no knowledge base ${missing[0]}`, 'knowledgeBaseIds');
    return found.filter((kb): kb is VisibleKnowledgeBase => kb !== null);
  }

  private lexical(tenantId: string, scope: Scope, text: string, topK: number): Promise<ScoredId[]> {
    return this.db.withTenant(tenantId, (tx) => chunkStore.searchLexical(tx, { ...scope, text, topK }));
  }

  /** Knowledge bases built by another embedder are left out: their vectors do not compare with the query's. */
  private async vector(tenantId: string, scope: Scope, kbs: VisibleKnowledgeBase[], text: string, topK: number): Promise<ScoredId[]> {
    const { embedder } = this.deps;
    const comparable = new Set(kbs.filter((kb) => kb.embedder === embedder.id).map((kb) => kb.id));
    const knowledgeBaseIds = scope.knowledgeBaseIds.filter((id) => comparable.has(id));
    if (knowledgeBaseIds.length === 0) return [];
    const [vector] = await embedder.embed([text]);
    const hits = await (await this.deps.vectors()).search({
      tenantId,
      isolation: this.principal.isolation,
      knowledgeBaseIds,
      vector: vector!,
      topK,
      reader: scope.reader,
      unrestrictedKnowledgeBaseIds: scope.unrestrictedKnowledgeBaseIds.filter((id) => comparable.has(id)),
    });
    return hits.map(({ id, score }) => ({ id, score }));
  }

  /**
   * The ranked chunks as passages. Vectors of a document being deleted or re-ingested may outlive its
   * chunks for a moment; a candidate without a chunk, or whose document is not READY, is dropped.
   */
  private candidates(tenantId: string, ranked: ScoredId[]): Promise<Passage[]> {
    return this.db.withTenant(tenantId, async (tx) => {
      const rows = new Map((await chunkStore.chunksByIds(tx, ranked.map((hit) => hit.id))).map((row) => [row.id, row]));
      const documentIds = [...new Set([...rows.values()].map((row) => row.documentId))];
      const ready = new Map(
        (await documents.documentsByIds(tx, documentIds)).filter((d) => d.status === 'READY').map((d) => [d.id, d.title]),
      );
      return ranked.flatMap((hit) => {
        const row = rows.get(hit.id);
        const title = row && ready.get(row.documentId);
        return title !== undefined ? [{ ...row!, score: hit.score, title }] : [];
      });
    });
  }

  /** A reranker that fails leaves the first-stage order: search stays up while a rerank service is down. */
  private async rerank(query: string, candidates: Passage[], topK: number): Promise<Passage[]> {
    const byId = new Map(candidates.map((passage) => [passage.id, passage]));
    const passages = candidates.map(({ id, content, title, sectionPath, score }) => ({ id, text: content, title: [title, ...sectionPath].join(' '), score }));
    try {
      const reranked = await this.deps.reranker.rerank(query, passages, topK);
      return reranked.map(({ id, score }) => ({ ...byId.get(id)!, score }));
    } catch (error) {
      this.log.warn({ err: error, reranker: this.deps.reranker.id }, 'rerank failed; answering in first-stage order');
      return candidates;
    }
  }
}

interface Scope {
  knowledgeBaseIds: string[];
  reader: string[];
  unrestrictedKnowledgeBaseIds: string[];
}
