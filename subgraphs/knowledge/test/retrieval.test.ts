import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { analyze, LocalHashEmbedder, murmur3, porterStem, stem, tokenize } from '@jarvis/platform/text';
import { Bm25Index } from '../src/retrieval/bm25.ts';
import { blend, fuseHybrid, rrf } from '../src/retrieval/fusion.ts';
import { ndcgAtK, recallAtK } from '../src/retrieval/metrics.ts';
import { topK, type ScoredId } from '../src/retrieval/ranking.ts';

const ids = (hits: ScoredId[]) => hits.map((hit) => hit.id);

function cosine(a: Float32Array, b: Float32Array): number {
  return a.reduce((sum, value, i) => sum + value * b[i]!, 0);
}

function near(actual: number, expected: number, tolerance = 1e-9): void {
  assert.ok(Math.abs(actual - expected) < tolerance, `expected ${expected}, got ${actual}`);
}

describe('analyzer', () => {
  test('tokens: lower-cased runs of letters and digits; hyphens, decimals and apostrophes stay inside a token', () => {
    assert.deepEqual(tokenize('IL-6 rose 1.8-fold in COVID-19 (n = 17); the patient’s T-cells, e.g. Ünïcode'), [
      'il-6', 'rose', '1.8-fold', 'in', 'covid-19', 'n', '17', 'the', 'patient’s', 't-cells', 'e.g', 'ünïcode',
    ]);
  });

  test('tokens: NFKC folds full-width forms and ligatures', () => {
    assert.deepEqual(tokenize('ＩＬ－６ ﬁbrosis ２０２０'), ['il-6', 'fibrosis', '2020']);
  });

  test('terms: stopwords dropped, words stemmed, hyphenated tokens give their parts and the parts glued', () => {
    assert.deepEqual(analyze('The effects of IL-6 on T-cells were studied'), ['effect', 'il', '6', 'il6', 't', 'cell', 'tcell', 'studi']);
  });

  test('terms: "IL-6", "IL6" and "IL 6" share a term; numbers and possessives are kept sensibly', () => {
    assert.ok(analyze('IL-6').includes('il6') && analyze('IL6').includes('il6'));
    assert.ok(analyze('IL-6').includes('6') && analyze('IL 6').includes('6'));
    assert.deepEqual(analyze("1.8 mg the patient's dose"), ['1.8', 'mg', 'patient', 'dose']);
    assert.deepEqual(analyze('the of and is'), []);
    assert.deepEqual(analyze(''), []);
  });

  test('Porter stemming: the reference examples', () => {
    const examples: [string, string][] = [
      ['caresses', 'caress'], ['ponies', 'poni'], ['cats', 'cat'], ['agreed', 'agre'], ['plastered', 'plaster'],
      ['motoring', 'motor'], ['sing', 'sing'], ['conflated', 'conflat'], ['hopping', 'hop'], ['falling', 'fall'],
      ['filing', 'file'], ['happy', 'happi'], ['relational', 'relat'], ['conditional', 'condit'],
      ['generalizations', 'gener'], ['hopefulness', 'hope'], ['electrical', 'electr'], ['adjustment', 'adjust'],
      ['adoption', 'adopt'], ['effective', 'effect'], ['controll', 'control'], ['is', 'is'],
    ];
    for (const [word, expected] of examples) assert.equal(porterStem(word), expected, word);
  });

  test('stem: word forms meet; tokens that are not plain ASCII words are left alone', () => {
    assert.equal(stem('infections'), stem('infected'));
    assert.equal(stem('studies'), stem('study'));
    assert.equal(stem('covid19'), 'covid19');
    assert.equal(stem('α'), 'α');
  });
});

describe('embedder', () => {
  const embedder = new LocalHashEmbedder(256);

  test('names model, version and dimensions; returns one vector of that size per text', async () => {
    assert.equal(embedder.id, 'local-hash-v1-256');
    assert.equal(new LocalHashEmbedder().id, 'local-hash-v1-1024');
    const vectors = await embedder.embed(['one text', 'another text']);
    assert.equal(vectors.length, 2);
    for (const vector of vectors) assert.equal(vector.length, 256);
  });

  test('deterministic: the same text gets the same vector from any instance, alone or in a batch', async () => {
    const [alone] = await embedder.embed(['Vitamin D supplementation lowers fracture risk']);
    const [, inBatch] = await new LocalHashEmbedder(256).embed(['something else', 'Vitamin D supplementation lowers fracture risk']);
    assert.deepEqual(Array.from(alone!), Array.from(inBatch!));
  });

  test('L2-normalised (to float32 precision)', async () => {
    const [vector] = await embedder.embed(['Aspirin reduces the risk of colorectal cancer in adults']);
    near(Math.hypot(...vector!), 1, 1e-6);
  });

  test('similar texts are closer than unrelated ones', async () => {
    const [claim, paraphrase, unrelated] = await embedder.embed([
      'Interleukin-6 levels are elevated in severe COVID-19 infection',
      'Patients with severe COVID-19 infections show elevated interleukin 6',
      'The stock market closed lower on Tuesday amid trade tariffs',
    ]);
    assert.ok(cosine(claim!, paraphrase!) > 0.4, `paraphrase cosine ${cosine(claim!, paraphrase!)}`);
    assert.ok(cosine(claim!, paraphrase!) > cosine(claim!, unrelated!) + 0.3);
  });

  test('character 4-grams relate spellings the stemmer keeps apart', async () => {
    const [british, american, other] = await embedder.embed(['tumour', 'tumor', 'fracture']);
    assert.ok(cosine(british!, american!) > 0.15, `cosine ${cosine(british!, american!)}`);
    assert.ok(cosine(british!, other!) < 0.05);
  });

  test('empty text and stopwords only give the zero vector, not NaN', async () => {
    for (const vector of await embedder.embed(['', 'the of and', '  \n '])) {
      assert.equal(vector.length, 256);
      assert.ok(vector.every((value) => value === 0));
    }
  });

  test('refuses a dimension count that is not a positive integer', () => {
    assert.throws(() => new LocalHashEmbedder(0), RangeError);
    assert.throws(() => new LocalHashEmbedder(12.5), RangeError);
  });

  test('murmur3 is MurmurHash3 x86_32 of the UTF-16LE bytes (reference vectors)', () => {
    assert.equal(murmur3('', 0), 0);
    assert.equal(murmur3('', 1), 0x514e28b7);
    assert.equal(murmur3('', 0xffffffff), 0x81f16f39);
    assert.equal(murmur3('\0\0', 0), 0x2362f9de);
    assert.equal(murmur3('\u6161\u6161', 0x9747b28c), 0x5a97808a);
    assert.equal(murmur3('x\u6161\u6161y', 0x9747b28c, 1, 3), 0x5a97808a);
  });
});

describe('bm25', () => {
  const docs = [
    { id: 'dogs', text: 'Dogs bark at strangers. A barking dog is a watchful dog.' },
    { id: 'cats', text: 'Cats purr when content and hiss at strangers.' },
    { id: 'birds', text: 'Birds sing at dawn; some birds migrate south in winter.' },
    { id: 'pets', text: 'Pets such as dogs, cats and birds live in many homes.' },
  ];

  test('ranks the document about the query first; documents without a query term are not returned', () => {
    const index = new Bm25Index();
    index.index(docs);
    const hits = index.search('why do dogs bark?', 10);
    assert.deepEqual(ids(hits), ['dogs', 'pets']);
    assert.ok(hits[0]!.score > hits[1]!.score);
    assert.deepEqual(index.search('quantum chromodynamics', 10), []);
  });

  test('IDF: a rare query term outweighs a common one', () => {
    const index = new Bm25Index();
    index.index([
      { id: 'common', text: 'patients patients patients study' },
      { id: 'rare', text: 'thalidomide study' },
      { id: 'filler-1', text: 'patients treated' },
      { id: 'filler-2', text: 'patients observed' },
    ]);
    assert.deepEqual(ids(index.search('thalidomide patients', 2)), ['rare', 'common']);
  });

  test('scores match the formula on a hand-computed example', () => {
    const index = new Bm25Index({ k1: 1.2, b: 0.75 });
    index.index([
      { id: 'a', text: 'apple banana' },
      { id: 'b', text: 'cherry' },
    ]);
    // idf = ln(1 + (2 − 1 + 0.5) / (1 + 0.5)) = ln 2; avgdl = 1.5; norm = 1.2 · (0.25 + 0.75 · 2 / 1.5) = 1.5
    const [hit] = index.search('apples', 1);
    assert.equal(hit!.id, 'a');
    near(hit!.score, (Math.LN2 * 2.2) / (1 + 1.5));
  });

  test('length normalisation: with b > 0 the shorter of two equal matches ranks first; b = 0 ties them', () => {
    const corpus = [
      { id: 'long', text: 'vaccine trial results and many other words about unrelated matters entirely' },
      { id: 'short', text: 'vaccine trial' },
    ];
    const normalised = new Bm25Index({ k1: 1.2, b: 0.75 });
    normalised.index(corpus);
    assert.deepEqual(ids(normalised.search('vaccine', 2)), ['short', 'long']);
    const flat = new Bm25Index({ k1: 1.2, b: 0 });
    flat.index(corpus);
    const [first, second] = flat.search('vaccine', 2);
    near(first!.score, second!.score);
  });

  test('topK cuts the ranking', () => {
    const index = new Bm25Index();
    index.index(docs);
    assert.equal(index.search('strangers birds dogs cats', 2).length, 2);
    assert.equal(index.size, 4);
  });
});

describe('ranking', () => {
  test('topK keeps the k best, best first, equal scores in id order', () => {
    const scores = [0.5, 0.9, 0.1, 0.9, 0.7];
    const names = ['e', 'd', 'c', 'b', 'a'];
    assert.deepEqual(topK(scores.length, (i) => scores[i]!, (i) => names[i]!, 3), [
      { id: 'b', score: 0.9 },
      { id: 'd', score: 0.9 },
      { id: 'a', score: 0.7 },
    ]);
    assert.deepEqual(topK(scores.length, (i) => scores[i]!, (i) => names[i]!, 0), []);
  });
});

describe('fusion', () => {
  const lexical: ScoredId[] = [
    { id: 'a', score: 10 },
    { id: 'b', score: 5 },
    { id: 'c', score: 0 },
  ];
  const vector: ScoredId[] = [
    { id: 'b', score: 0.9 },
    { id: 'd', score: 0.5 },
    { id: 'a', score: 0.1 },
  ];

  test('RRF: sum of 1 / (k + rank) over the lists', () => {
    const fused = rrf([lexical.slice(0, 3), vector.slice(0, 2)], { k: 60 });
    assert.deepEqual(ids(fused), ['b', 'a', 'd', 'c']);
    const score = Object.fromEntries(fused.map((hit) => [hit.id, hit.score]));
    near(score.b!, 1 / 62 + 1 / 61);
    near(score.a!, 1 / 61);
    near(score.d!, 1 / 62);
    near(score.c!, 1 / 63);
  });

  test('RRF: weights scale each list, and a smaller k favours the head of a list', () => {
    const weighted = rrf([lexical.slice(0, 3), vector.slice(0, 2)], { k: 60, weights: [1, 3] });
    assert.deepEqual(ids(weighted), ['b', 'd', 'a', 'c']);
    near(weighted[1]!.score, 3 / 62);
    const sharp = rrf([[{ id: 'x', score: 1 }, { id: 'y', score: 0 }], [{ id: 'z', score: 1 }, { id: 'y', score: 0 }]], { k: 1 });
    near(sharp.find((hit) => hit.id === 'x')!.score, 1 / 2);
    near(sharp.find((hit) => hit.id === 'y')!.score, 2 / 3);
  });

  test('score blend: min-max per list, then weighted sum', () => {
    // lexical → a 1, b 0.5, c 0; vector → b 1, d 0.5, a 0
    const fused = blend([lexical, vector], { weights: [0.8, 0.2] });
    assert.deepEqual(fused, [
      { id: 'a', score: 0.8 },
      { id: 'b', score: 0.8 * 0.5 + 0.2 },
      { id: 'd', score: 0.2 * 0.5 },
      { id: 'c', score: 0 },
    ]);
    assert.deepEqual(fuseHybrid(lexical, vector), fused);
    // a 0.2, b 0.1 + 0.8, d 0.4, c 0
    assert.deepEqual(ids(blend([lexical, vector], { weights: [0.2, 0.8] })), ['b', 'd', 'a', 'c']);
  });

  test('score blend: a list whose scores are all equal counts each of its documents fully', () => {
    assert.deepEqual(blend([[{ id: 'only', score: 3.2 }]]), [{ id: 'only', score: 1 }]);
  });
});

describe('metrics', () => {
  const relevant = new Map([
    ['a', 1],
    ['b', 1],
  ]);

  test('nDCG@k: log2 discount, ideal DCG from the qrels', () => {
    // DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    near(ndcgAtK(['x', 'a', 'y', 'b'], relevant, 10), (1 / Math.log2(3) + 1 / Math.log2(5)) / (1 + 1 / Math.log2(3)));
    near(ndcgAtK(['a', 'b', 'x'], relevant, 10), 1);
    near(ndcgAtK(['x', 'y', 'a'], relevant, 2), 0);
    near(ndcgAtK(['a'], relevant, 1), 1);
  });

  test('nDCG@k: graded relevance uses the grade as gain', () => {
    const graded = new Map([
      ['a', 2],
      ['b', 1],
    ]);
    near(ndcgAtK(['b', 'a'], graded, 10), (1 + 2 / Math.log2(3)) / (2 + 1 / Math.log2(3)));
    near(ndcgAtK([], graded, 10), 0);
    near(ndcgAtK(['a'], new Map(), 10), 0);
  });

  test('recall@k: relevant documents found in the first k over all relevant', () => {
    const three = new Map([
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ]);
    near(recallAtK(['a', 'x', 'b'], three, 2), 1 / 3);
    near(recallAtK(['a', 'x', 'b'], three, 3), 2 / 3);
    near(recallAtK(['a', 'a'], three, 2), 1 / 3);
    near(recallAtK(['a'], new Map(), 10), 0);
  });
});
