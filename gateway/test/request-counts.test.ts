/** The gateway's outbox for request counts, in memory and on Redis: sealed once, sent by one replica, kept until acknowledged. */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { deleteRedisKeys, redisVariants, uniqueRedisPrefix } from '@jarvis/platform/testing';
import { memoryRequestCounts, type RequestCounts, type SealedBatch } from '../src/metering/counts.ts';
import { redisRequestCounts } from '../src/metering/redis-counts.ts';

const ACME = { tenantId: 'acme', isolation: 'SHARED' as const };
const GLOBEX = { tenantId: 'globex', isolation: 'DEDICATED' as const };

const quantities = (batches: SealedBatch[]) =>
  batches.map((batch) => Object.fromEntries(batch.counts.map(({ metered, quantity }) => [`${metered.tenantId} ${metered.isolation}`, quantity])));

for (const variant of redisVariants()) {
  describe(`request counts (${variant.name})`, { skip: variant.skip }, () => {
    const prefix = uniqueRedisPrefix();
    const opened: RequestCounts[] = [];
    /** Replicas share one store: on Redis, two clients under one prefix; in memory, one store. */
    const memory = memoryRequestCounts();
    const replica = () => {
      const counts = variant.url ? redisRequestCounts(variant.url, prefix, () => {}) : memory;
      opened.push(counts);
      return counts;
    };
    after(async () => {
      await Promise.all(opened.map((counts) => counts.close()));
      if (variant.url) await deleteRedisKeys(variant.url, prefix);
    });

    test('a seal takes the counts so far; later counts wait for the next', async () => {
      const counts = replica();
      await Promise.all([counts.add(ACME), counts.add(ACME), counts.add(GLOBEX)]);
      await counts.seal();
      await counts.add(ACME);
      assert.deepEqual(quantities(await counts.claimPending()), [{ 'acme SHARED': 2, 'globex DEDICATED': 1 }]);
      await counts.seal();
      const pending = await counts.claimPending();
      assert.equal(pending.length, 2);
      for (const batch of pending) for (const { metered } of batch.counts) await counts.acknowledge(batch.id, metered);
      assert.deepEqual(await counts.claimPending(), [], 'acknowledged batches are gone');
    });

    test('a batch is kept until each of its counts is acknowledged', async () => {
      const counts = replica();
      await Promise.all([counts.add(ACME), counts.add(GLOBEX)]);
      await counts.seal();
      const [batch] = await counts.claimPending();
      await counts.acknowledge(batch!.id, ACME);
      assert.deepEqual(quantities(await counts.claimPending()), [{ 'globex DEDICATED': 1 }], 'the unacknowledged count is sent again');
      await counts.acknowledge(batch!.id, GLOBEX);
      assert.deepEqual(await counts.claimPending(), []);
      await counts.seal();
      assert.deepEqual(await counts.claimPending(), [], 'sealing nothing makes no batch');
    });

    // Replicas are processes sharing Redis; in memory there is one.
    if (variant.url) test('a batch one replica claimed is not sent by another meanwhile', async () => {
      const [first, second] = [replica(), replica()];
      await first.add(ACME);
      await second.add(ACME);
      await second.seal();
      const claimed = await first.claimPending();
      assert.deepEqual(quantities(claimed), [{ 'acme SHARED': 2 }], "one batch holds both replicas' counts");
      assert.deepEqual(await second.claimPending(), [], 'claimed by the first');
      await first.acknowledge(claimed[0]!.id, ACME);
      assert.deepEqual(await second.claimPending(), []);
    });
  });
}
