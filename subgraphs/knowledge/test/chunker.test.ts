import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blocksOf, chunkText, estimateTokens } from '../src/ingestion/chunker.ts';

const DOC = `# Handbook

Welcome to the company. This handbook says how we work.

## Leave

Everyone gets 25 days of paid leave a year. Unused days carry over until March.

- Ask your lead two weeks ahead.
- Record it in the HR tool.
  Approval is automatic after five days.

## Expenses

\`\`\`
receipt: required

limit: 50 EUR
\`\`\`

Submit within 30 days.`;

test('blocks: headings nest into section paths; fenced code and lists stay whole; offsets point into the text', () => {
  const blocks = blocksOf(DOC);
  const slice = (i: number) => DOC.slice(blocks[i]!.start, blocks[i]!.end);
  assert.deepEqual(
    blocks.map((b) => [b.kind, b.sectionPath.join(' > ')]),
    [
      ['heading', 'Handbook'],
      ['paragraph', 'Handbook'],
      ['heading', 'Handbook > Leave'],
      ['paragraph', 'Handbook > Leave'],
      ['list', 'Handbook > Leave'],
      ['heading', 'Handbook > Expenses'],
      ['code', 'Handbook > Expenses'],
      ['paragraph', 'Handbook > Expenses'],
    ],
  );
  assert.equal(slice(4), '- Ask your lead two weeks ahead.\n- Record it in the HR tool.\n  Approval is automatic after five days.');
  assert.equal(slice(6), '```\nreceipt: required\n\nlimit: 50 EUR\n```', 'a blank line inside a fence does not end it');
});

test('chunks are slices of the text, within budget, one section each, covering every word', () => {
  const chunks = chunkText(DOC, { maxTokens: 40, overlapTokens: 0 });
  for (const chunk of chunks) {
    assert.equal(chunk.text, DOC.slice(chunk.start, chunk.end));
    assert.ok(chunk.tokens <= 40, `${chunk.tokens} tokens`);
  }
  assert.deepEqual(chunks.map((c) => c.sectionPath.at(-1)), ['Handbook', 'Leave', 'Leave', 'Expenses'], 'Leave is too long for one');
  assert.ok(chunks[2]!.text.startsWith('- Ask'), 'without overlap a chunk starts at its first block');
  assert.ok(chunks[1]!.text.startsWith('## Leave'), 'a heading leads its section');
  const covered = new Set(chunks.flatMap((c) => Array.from({ length: c.end - c.start }, (_, i) => c.start + i)));
  for (let i = 0; i < DOC.length; i++) if (/\S/.test(DOC[i]!)) assert.ok(covered.has(i), `character ${i} (${DOC[i]}) is in no chunk`);
});

test('a long section is cut between sentences, and the next chunk repeats the end of the one before', () => {
  const sentences = Array.from({ length: 30 }, (_, i) => `Sentence number ${i} says something about leave policy.`);
  const text = `# Policy\n\n${sentences.join(' ')}`;
  const chunks = chunkText(text, { maxTokens: 60, overlapTokens: 15 });
  assert.ok(chunks.length > 3);
  for (const [i, chunk] of chunks.entries()) {
    assert.ok(chunk.tokens <= 60, `chunk ${i}: ${chunk.tokens} tokens`);
    assert.deepEqual(chunk.sectionPath, ['Policy']);
    if (i > 0) {
      assert.ok(chunk.start < chunks[i - 1]!.end, `chunk ${i} overlaps the one before`);
      assert.match(chunk.text, /^Sentence number \d+/, 'overlap starts at a sentence');
    }
    if (i < chunks.length - 1) assert.match(chunk.text, /policy\.\s*$/, 'cut after a sentence');
  }
});

test('a new section does not carry the previous section into its first chunk', () => {
  const text = `# A\n\n${'Alpha words here. '.repeat(20)}\n\n# B\n\nBeta.`;
  const chunks = chunkText(text, { maxTokens: 50, overlapTokens: 20 });
  const b = chunks.find((c) => c.sectionPath[0] === 'B')!;
  assert.ok(b.text.startsWith('# B'));
});

test('text without any break is still cut within budget, at word boundaries', () => {
  const text = 'word '.repeat(500).trim();
  const chunks = chunkText(text, { maxTokens: 50, overlapTokens: 0 });
  assert.ok(chunks.length >= 12);
  for (const chunk of chunks) {
    assert.ok(chunk.tokens <= 50);
    assert.ok(chunk.text.trim().split(' ').every((w) => w === 'word'), 'no word is split');
  }
  assert.equal(estimateTokens(''), 0);
  assert.deepEqual(chunkText(''), []);
});
