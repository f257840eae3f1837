import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { LocalHashEmbedder, type Embedder } from '@jarvis/platform/text';
import { deleteRedisKeys, freePort, redisVariants, uniqueRedisPrefix } from '@jarvis/platform/testing';
import {
  DEFAULT_SEMANTIC_THRESHOLD,
  normalizeText,
  openInferenceCache,
  stableJson,
  type CachedAnswer,
  type CacheKey,
  type InferenceCache,
  type InferenceCacheOptions,
} from '../src/cache/index.ts';

const PASSAGES = [
  'Annual plans can be refunded in full within 30 days of purchase, and pro rata after that.',
  'Monthly plans are not refunded; cancelling stops the next renewal.',
];
const OTHER_PASSAGES = ['Refunds are handled by the reseller for plans bought through a partner.'];

/** A RAG prompt as the answerer fits it: instructions, numbered passages, then the question. */
function promptOf(question: string, passages: string[] = PASSAGES): string {
  return [
    'Answer the question from the passages only, citing them by number.',
    ...passages.map((passage, i) => `[${i + 1}] ${passage}`),
    `Question: ${question}`,
    'Answer:',
  ].join('\n');
}

function keyOf(tenantId: string, question: string, overrides: Partial<CacheKey> & { passages?: string[] } = {}): CacheKey {
  const { passages, ...rest } = overrides;
  return { tenantId, model: 'local-extractive', params: { temperature: 0, maxTokens: 512 }, prompt: promptOf(question, passages), question, ...rest };
}

function answerOf(text: string): CachedAnswer {
  return {
    text,
    citations: [{ index: 1, documentId: randomUUID(), chunk: 0, quote: PASSAGES[0]!.slice(0, 40) }],
    model: 'local-extractive',
    promptTokens: 120,
    completionTokens: 24,
    createdAt: new Date().toISOString(),
  };
}

const embedder = new LocalHashEmbedder();

/** The cosine the cache should find between two questions: the platform embedder over the normalised text. */
async function cosine(a: string, b: string): Promise<number> {
  const [x, y] = await embedder.embed([normalizeText(a), normalizeText(b)]);
  let dot = 0;
  for (let i = 0; i < x!.length; i++) dot += x![i]! * y![i]!;
  return dot;
}

const QUESTION = 'What is the refund policy for annual plans?';
const PARAPHRASE = "What's the refund policy on annual plans?";
const NEAR_PARAPHRASE = 'Tell me the refund policy for annual plans.';
const OTHER_QUESTION = 'What is the refund policy for monthly plans?';

for (const variant of redisVariants()) {
  describe(`inference cache on ${variant.name}`, { skip: variant.skip }, () => {
    const prefix = uniqueRedisPrefix();
    const opened: InferenceCache[] = [];
    const open = (options: Partial<InferenceCacheOptions> = {}): InferenceCache => {
      const cache = openInferenceCache({ redisUrl: variant.url, prefix, ttlSeconds: 60, semanticThreshold: DEFAULT_SEMANTIC_THRESHOLD, ...options });
      opened.push(cache);
      return cache;
    };
    const redis = variant.url ? new Redis(variant.url) : undefined;
    /** The Redis keys of one tenant's cache, by kind. */
    const keysOf = async (tenantId: string, kind: 'answer' | 'bucket' | 'vectors') => redis!.keys(`${prefix}{${tenantId}}:${kind}:*`);

    after(async () => {
      await Promise.all(opened.map((cache) => cache.close()));
      if (variant.url) {
        await redis!.quit();
        await deleteRedisKeys(variant.url, prefix);
      }
    });

    test('a miss, then an EXACT hit for the same prompt modulo whitespace, case and Unicode forms', async () => {
      const cache = open();
      const tenant = randomUUID();
      assert.equal(await cache.lookup(keyOf(tenant, QUESTION)), undefined);
      const answer = answerOf('Annual plans are refunded in full within 30 days [1].');
      await cache.store(keyOf(tenant, QUESTION), answer);

      const same = await cache.lookup(keyOf(tenant, QUESTION));
      assert.deepEqual(same, { kind: 'EXACT', answer, similarity: 1 });
      // Full-width letters (NFKC), other case, runs of whitespace and line breaks, padding.
      const shouted = keyOf(tenant, 'ＷＨＡＴ  is the REFUND policy\tfor annual plans?');
      shouted.prompt = `  ${shouted.prompt.toUpperCase().replaceAll(' ', '   ').replaceAll('\n', ' \r\n ')}  `;
      assert.deepEqual(await cache.lookup(shouted), { kind: 'EXACT', answer, similarity: 1 });
      // Parameters in another order are the same parameters.
      assert.equal((await cache.lookup(keyOf(tenant, QUESTION, { params: { maxTokens: 512, temperature: 0 } })))?.kind, 'EXACT');
    });

    test('a hit is a copy: changing it does not change the cache', async () => {
      const cache = open();
      const tenant = randomUUID();
      await cache.store(keyOf(tenant, QUESTION), answerOf('original'));
      const first = await cache.lookup(keyOf(tenant, QUESTION));
      first!.answer.text = 'changed by a caller';
      assert.equal((await cache.lookup(keyOf(tenant, QUESTION)))!.answer.text, 'original');
    });

    test('SEMANTIC hit for a paraphrase at or above the threshold; a miss below it', async () => {
      const cache = open();
      const tenant = randomUUID();
      const answer = answerOf('Refunded in full within 30 days [1].');
      await cache.store(keyOf(tenant, QUESTION), answer);

      const expected = await cosine(QUESTION, PARAPHRASE);
      assert.ok(expected >= DEFAULT_SEMANTIC_THRESHOLD && expected < 1, `paraphrase cosine ${expected}`);
      const hit = await cache.lookup(keyOf(tenant, PARAPHRASE));
      assert.equal(hit?.kind, 'SEMANTIC');
      assert.deepEqual(hit.answer, answer);
      assert.ok(Math.abs(hit.similarity - expected) < 1e-5, `similarity ${hit.similarity}, expected ${expected}`);

      for (const question of [NEAR_PARAPHRASE, OTHER_QUESTION]) {
        const below = await cosine(QUESTION, question);
        assert.ok(below < DEFAULT_SEMANTIC_THRESHOLD && below > 0.6, `${question}: cosine ${below}`);
        assert.equal(await cache.lookup(keyOf(tenant, question)), undefined, question);
      }
      // The same pair under a threshold above its similarity: a miss.
      const strict = open({ semanticThreshold: Math.min(1, expected + 0.01) });
      await strict.store(keyOf(tenant, QUESTION), answer);
      assert.equal(await strict.lookup(keyOf(tenant, PARAPHRASE)), undefined);
      // And under one just below the near paraphrase's similarity: a hit.
      const lenient = open({ semanticThreshold: (await cosine(QUESTION, NEAR_PARAPHRASE)) - 0.001 });
      await lenient.store(keyOf(tenant, QUESTION), answer);
      assert.equal((await lenient.lookup(keyOf(tenant, NEAR_PARAPHRASE)))?.kind, 'SEMANTIC');
    });

    test('a semantic hit needs the same retrieved passages', async () => {
      const cache = open();
      const tenant = randomUUID();
      await cache.store(keyOf(tenant, QUESTION), answerOf('from the plan passages'));
      assert.equal(await cache.lookup(keyOf(tenant, PARAPHRASE, { passages: OTHER_PASSAGES })), undefined);
      assert.equal(await cache.lookup(keyOf(tenant, QUESTION, { passages: OTHER_PASSAGES })), undefined);
      assert.equal(await cache.lookup(keyOf(tenant, PARAPHRASE, { passages: [...PASSAGES].reverse() })), undefined);
      assert.equal((await cache.lookup(keyOf(tenant, PARAPHRASE)))?.kind, 'SEMANTIC');
    });

    test('questions that differ in negation or numbers never match semantically, whatever their vectors', async () => {
      const cache = open();
      const tenant = randomUUID();
      const allowed = 'Is a refund allowed for annual plans?';
      const notAllowed = 'Is a refund not allowed for annual plans?';
      // The hashed embedder drops "not" as a stopword: the vectors are the same.
      assert.ok((await cosine(allowed, notAllowed)) > 0.999);
      await cache.store(keyOf(tenant, allowed), answerOf('Yes, within 30 days.'));
      assert.equal(await cache.lookup(keyOf(tenant, notAllowed)), undefined);
      assert.equal(await cache.lookup(keyOf(tenant, "Isn't a refund allowed for annual plans?")), undefined);
      assert.equal((await cache.lookup(keyOf(tenant, 'is a refund allowed for the annual plans')))?.kind, 'SEMANTIC');

      const days30 = 'What is the refund window for annual plans bought 30 days ago?';
      const days45 = 'What is the refund window for annual plans bought 45 days ago?';
      assert.ok((await cosine(days30, days45)) > 0.8);
      await cache.store(keyOf(tenant, days30), answerOf('Full refund.'));
      assert.equal(await cache.lookup(keyOf(tenant, days45)), undefined);
    });

    test('a question of stopwords only gets exact hits, never semantic ones', async () => {
      const cache = open();
      const tenant = randomUUID();
      await cache.store(keyOf(tenant, 'What is it?'), answerOf('It is a plan.'));
      assert.equal((await cache.lookup(keyOf(tenant, 'what  IS it?')))?.kind, 'EXACT');
      assert.equal(await cache.lookup(keyOf(tenant, 'What is this?')), undefined);
    });

    test('another tenant gets nothing, exact or semantic, for identical prompts; each tenant gets its own answer', async () => {
      const cache = open();
      const [a, b] = [randomUUID(), randomUUID()];
      await cache.store(keyOf(a, QUESTION), answerOf("tenant A's answer"));
      assert.equal(await cache.lookup(keyOf(b, QUESTION)), undefined);
      assert.equal(await cache.lookup(keyOf(b, PARAPHRASE)), undefined);

      await cache.store(keyOf(b, QUESTION), answerOf("tenant B's answer"));
      assert.equal((await cache.lookup(keyOf(a, QUESTION)))!.answer.text, "tenant A's answer");
      assert.equal((await cache.lookup(keyOf(b, QUESTION)))!.answer.text, "tenant B's answer");
      assert.equal((await cache.lookup(keyOf(a, PARAPHRASE)))!.answer.text, "tenant A's answer");
      assert.equal((await cache.lookup(keyOf(b, PARAPHRASE)))!.answer.text, "tenant B's answer");

      // Tenant ids that look like key syntax stay apart too.
      const braces = `${a}}:answer:{`;
      assert.equal(await cache.lookup(keyOf(braces, QUESTION)), undefined);
      if (redis) {
        assert.equal((await keysOf(a, 'answer')).length, 1);
        assert.equal((await keysOf(b, 'answer')).length, 1);
      }
    });

    test('a key without a tenant is refused', async () => {
      const cache = open();
      await assert.rejects(cache.lookup(keyOf('', QUESTION)), TypeError);
      await assert.rejects(cache.store(keyOf('', QUESTION), answerOf('x')), TypeError);
    });

    test('another model or other parameters miss, exact and semantic', async () => {
      const cache = open();
      const tenant = randomUUID();
      await cache.store(keyOf(tenant, QUESTION), answerOf('cached'));
      for (const overrides of [
        { model: 'gpt-4o-mini' },
        { params: { temperature: 0.7, maxTokens: 512 } },
        { params: { temperature: 0 } },
        { params: { temperature: 0, maxTokens: 512, seed: 7 } },
      ]) {
        assert.equal(await cache.lookup(keyOf(tenant, QUESTION, overrides)), undefined, JSON.stringify(overrides));
        assert.equal(await cache.lookup(keyOf(tenant, PARAPHRASE, overrides)), undefined, JSON.stringify(overrides));
      }
      assert.equal((await cache.lookup(keyOf(tenant, PARAPHRASE)))?.kind, 'SEMANTIC');
    });

    test('answers expire with the TTL, exact and semantic', async () => {
      const cache = open({ ttlSeconds: 1 });
      const tenant = randomUUID();
      await cache.store(keyOf(tenant, QUESTION), answerOf('short-lived'));
      assert.equal((await cache.lookup(keyOf(tenant, QUESTION)))?.kind, 'EXACT');
      assert.equal((await cache.lookup(keyOf(tenant, PARAPHRASE)))?.kind, 'SEMANTIC');
      await sleep(1_100);
      assert.equal(await cache.lookup(keyOf(tenant, QUESTION)), undefined);
      assert.equal(await cache.lookup(keyOf(tenant, PARAPHRASE)), undefined);
      if (redis) {
        // Redis let go of every key: the answer and the bucket expire with the TTL.
        for (const kind of ['answer', 'bucket', 'vectors'] as const) assert.deepEqual(await keysOf(tenant, kind), [], kind);
      }
      // A new store starts afresh.
      await cache.store(keyOf(tenant, QUESTION), answerOf('stored again'));
      assert.equal((await cache.lookup(keyOf(tenant, PARAPHRASE)))!.answer.text, 'stored again');
    });

    test('a hit does not extend the TTL; storing again does', async () => {
      // Margins of 600 ms or more either side of the TTL, for a busy machine.
      const cache = open({ ttlSeconds: 1.5 });
      const tenant = randomUUID();
      await cache.store(keyOf(tenant, QUESTION), answerOf('first'));
      await sleep(700);
      assert.equal((await cache.lookup(keyOf(tenant, QUESTION)))?.kind, 'EXACT');
      await sleep(900);
      assert.equal(await cache.lookup(keyOf(tenant, QUESTION)), undefined);

      // The second store's question would be gone by the lookup; storing again renews answer and question.
      await cache.store(keyOf(tenant, QUESTION), answerOf('second'));
      await sleep(900);
      await cache.store(keyOf(tenant, QUESTION), answerOf('third'));
      await sleep(900);
      assert.equal((await cache.lookup(keyOf(tenant, PARAPHRASE)))?.answer.text, 'third');
    });

    test('the semantic bucket keeps the newest entries only; answers stay exact hits', async () => {
      const cache = open({ maxSemanticEntries: 3 });
      const tenant = randomUUID();
      const topics = ['refund policy for annual plans', 'password reset procedure', 'data retention period', 'single sign-on setup', 'invoice currency options'];
      const asked = (topic: string) => `What is the ${topic}?`;
      const paraphrased = (topic: string) => `what's the ${topic}`;
      for (const topic of topics) await cache.store(keyOf(tenant, asked(topic)), answerOf(topic));

      const semantic = async () => {
        const texts = [];
        for (const topic of topics) {
          const hit = await cache.lookup(keyOf(tenant, paraphrased(topic)));
          assert.ok(!hit || hit.kind === 'SEMANTIC');
          texts.push(hit?.answer.text);
        }
        return texts;
      };
      assert.deepEqual(await semantic(), [undefined, undefined, topics[2], topics[3], topics[4]]);
      for (const topic of topics) assert.equal((await cache.lookup(keyOf(tenant, asked(topic))))?.kind, 'EXACT', topic);
      if (redis) {
        const [bucket] = await keysOf(tenant, 'bucket');
        const [vectors] = await keysOf(tenant, 'vectors');
        assert.equal(await redis.zcard(bucket!), 3);
        assert.equal(await redis.hlen(vectors!), 3);
      }

      // Storing the oldest again makes it the newest; the next oldest falls out.
      await cache.store(keyOf(tenant, asked(topics[2]!)), answerOf(`${topics[2]} again`));
      await cache.store(keyOf(tenant, asked(topics[0]!)), answerOf(`${topics[0]} again`));
      assert.deepEqual(await semantic(), [`${topics[0]} again`, undefined, `${topics[2]} again`, undefined, topics[4]]);
    });

    // Only Redis has replicas to share with and an eviction to survive.
    if (variant.url) {
      test('two replicas share one cache on Redis', async () => {
        const [one, two] = [open(), open()];
        const tenant = randomUUID();
        await one.store(keyOf(tenant, QUESTION), answerOf('stored by replica one'));
        assert.equal((await two.lookup(keyOf(tenant, QUESTION)))?.kind, 'EXACT');
        assert.equal((await two.lookup(keyOf(tenant, PARAPHRASE)))!.answer.text, 'stored by replica one');
      });

      test('an answer gone from Redis while its question is indexed is a miss, and the reference is pruned', async () => {
        const cache = open();
        const tenant = randomUUID();
        await cache.store(keyOf(tenant, QUESTION), answerOf('about to be evicted'));
        await cache.store(keyOf(tenant, OTHER_QUESTION), answerOf('monthly'));
        const [bucket] = await keysOf(tenant, 'bucket');
        const [vectors] = await keysOf(tenant, 'vectors');
        assert.equal(await redis!.zcard(bucket!), 2);
        // Evict the first answer, as maxmemory would, and leave its question indexed.
        const answers = await keysOf(tenant, 'answer');
        for (const name of answers) if ((await redis!.get(name))?.includes('about to be evicted')) assert.equal(await redis!.del(name), 1);
        assert.equal((await keysOf(tenant, 'answer')).length, 1);

        assert.equal(await cache.lookup(keyOf(tenant, PARAPHRASE)), undefined);
        assert.deepEqual(await redis!.zrange(bucket!, '0', '-1'), await redis!.hkeys(vectors!));
        assert.equal(await redis!.zcard(bucket!), 1);
        assert.equal((await cache.lookup(keyOf(tenant, "What's the refund policy on monthly plans?")))!.answer.text, 'monthly');
      });
    }
  });
}

describe('inference cache failures', () => {
  test('with Redis unreachable, lookups miss and stores are skipped, quickly, and the failure is reported', async () => {
    const errors: unknown[] = [];
    const cache = openInferenceCache({
      redisUrl: `redis://127.0.0.1:${await freePort()}`,
      prefix: uniqueRedisPrefix(),
      ttlSeconds: 60,
      semanticThreshold: 0.92,
      onError: (error) => errors.push(error),
    });
    try {
      const started = Date.now();
      await cache.store(keyOf(randomUUID(), QUESTION), answerOf('nowhere to go'));
      assert.equal(await cache.lookup(keyOf(randomUUID(), QUESTION)), undefined);
      assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);
      assert.ok(errors.length >= 2, `errors reported: ${errors.length}`);
    } finally {
      await cache.close();
    }
  });

  test('an embedder that fails makes a miss or a skipped store, not a failed answer', async () => {
    const errors: unknown[] = [];
    let down = false;
    const flaky: Embedder = {
      id: embedder.id,
      dimensions: embedder.dimensions,
      embed: (texts) => (down ? Promise.reject(new Error('embedding service down')) : embedder.embed(texts)),
    };
    const cache = openInferenceCache({ prefix: 'unused:', ttlSeconds: 60, semanticThreshold: 0.92, embedder: flaky, onError: (e) => errors.push(e) });
    await cache.store(keyOf('tenant', QUESTION), answerOf('x'));
    assert.equal((await cache.lookup(keyOf('tenant', PARAPHRASE)))?.kind, 'SEMANTIC');
    down = true;
    assert.equal((await cache.lookup(keyOf('tenant', QUESTION)))?.kind, 'EXACT'); // no embedding needed
    assert.equal(await cache.lookup(keyOf('tenant', PARAPHRASE)), undefined);
    await cache.store(keyOf('tenant', OTHER_QUESTION), answerOf('y'));
    assert.deepEqual(errors.map((error) => (error as Error).message), ['embedding service down', 'embedding service down']);
    down = false;
    assert.equal(await cache.lookup(keyOf('tenant', OTHER_QUESTION)), undefined);
    await cache.close();
  });

  test('options are checked', () => {
    const base = { prefix: 'p:', ttlSeconds: 60, semanticThreshold: 0.92 };
    assert.throws(() => openInferenceCache({ ...base, ttlSeconds: 0 }), RangeError);
    assert.throws(() => openInferenceCache({ ...base, semanticThreshold: 0 }), RangeError);
    assert.throws(() => openInferenceCache({ ...base, semanticThreshold: 1.5 }), RangeError);
    assert.throws(() => openInferenceCache({ ...base, maxSemanticEntries: 0 }), RangeError);
  });

  test('stable JSON sorts keys at every depth and keeps array order', () => {
    assert.equal(stableJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } }), '{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}');
    assert.equal(normalizeText('  Ｈｅｌｌｏ\n\t WORLD  '), 'hello world');
  });
});
