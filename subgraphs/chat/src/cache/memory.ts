import { rankMatches, type CacheAdapter, type PreparedKey, type SemanticEntry } from './keys.ts';
import type { CacheHit, CachedAnswer } from './types.ts';

export interface CacheSettings {
  ttlMs: number;
  semanticThreshold: number;
  maxSemanticEntries: number;
}

interface StoredAnswer {
  /** JSON, as Redis keeps it: a hit is a fresh copy, and what a caller does with it never changes the cache. */
  json: string;
  expiresAt: number;
}

interface BucketEntry extends SemanticEntry {
  storedAt: number;
}

/** Looks expired entries over at most this often, so a cache nobody reads from again still lets go of them. */
const SWEEP_EVERY_MS = 60_000;

/**
 * The inference cache in this process, for the embedded default (one replica): the semantics of the Redis
 * adapter, with maps. Keys are scoped by tenant first; a bucket is a Map in storing order, the newest last.
 */
export class MemoryInferenceCache implements CacheAdapter {
  private readonly answers = new Map<string, StoredAnswer>();
  private readonly buckets = new Map<string, Map<string, BucketEntry>>();
  private nextSweepAt: number;

  constructor(private readonly settings: CacheSettings) {
    this.nextSweepAt = Date.now() + Math.min(settings.ttlMs, SWEEP_EVERY_MS);
  }

  async lookup(key: PreparedKey): Promise<CacheHit | undefined> {
    const { tenantId, exact, bucket } = key;
    const now = Date.now();
    this.sweep(now);
    const exactHit = this.answer(answerKey(tenantId, exact), now);
    if (exactHit) return { kind: 'EXACT', answer: exactHit, similarity: 1 };
    const entries = this.buckets.get(bucketKey(tenantId, bucket));
    if (!entries) return undefined; // no bucket, no embedding
    const vector = await key.vector();
    if (!vector) return undefined;
    this.prune(entries, now);
    for (const { member, similarity } of rankMatches(vector, entries.values(), this.settings.semanticThreshold)) {
      const answer = this.answer(answerKey(tenantId, member), now);
      if (answer) return { kind: 'SEMANTIC', answer, similarity };
      entries.delete(member); // its answer is gone: a dangling reference
    }
    return undefined;
  }

  async store(key: PreparedKey, answer: CachedAnswer): Promise<void> {
    const { tenantId, exact, bucket } = key;
    const vector = await key.vector();
    const now = Date.now();
    this.sweep(now);
    this.answers.set(answerKey(tenantId, exact), { json: JSON.stringify(answer), expiresAt: now + this.settings.ttlMs });
    if (!vector) return;
    const name = bucketKey(tenantId, bucket);
    let entries = this.buckets.get(name);
    if (!entries) this.buckets.set(name, (entries = new Map()));
    entries.delete(exact); // stored again: it becomes the newest
    entries.set(exact, { member: exact, vector, storedAt: now });
    for (const oldest of entries.keys()) {
      if (entries.size <= this.settings.maxSemanticEntries) break;
      entries.delete(oldest);
    }
  }

  async close(): Promise<void> {
    this.answers.clear();
    this.buckets.clear();
  }

  private answer(name: string, now: number): CachedAnswer | undefined {
    const stored = this.answers.get(name);
    if (!stored) return undefined;
    if (stored.expiresAt <= now) {
      this.answers.delete(name);
      return undefined;
    }
    return JSON.parse(stored.json) as CachedAnswer;
  }

  /** Drops a bucket's entries as old as the TTL: their answers have expired with them. */
  private prune(entries: Map<string, BucketEntry>, now: number): void {
    for (const [member, { storedAt }] of entries) if (storedAt + this.settings.ttlMs <= now) entries.delete(member);
  }

  private sweep(now: number): void {
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + Math.min(this.settings.ttlMs, SWEEP_EVERY_MS);
    for (const [name, { expiresAt }] of this.answers) if (expiresAt <= now) this.answers.delete(name);
    for (const [name, entries] of this.buckets) {
      this.prune(entries, now);
      if (entries.size === 0) this.buckets.delete(name);
    }
  }
}

/** The tenant comes first and whole in every name: no two tenants ever share one. */
function answerKey(tenantId: string, exact: string): string {
  return JSON.stringify([tenantId, exact]);
}

function bucketKey(tenantId: string, bucket: string): string {
  return JSON.stringify([tenantId, bucket]);
}
