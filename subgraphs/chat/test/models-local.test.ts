import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { answerSentences, LocalAnswerer, NOT_FOUND_ANSWER, splitSentences } from '../src/models/local-answerer.ts';
import type { ChatMessage, CompletionChunk, CompletionRequest, ContextPassage } from '../src/models/port.ts';
import { countMessageTokens, systemContent } from '../src/models/tokens.ts';

const PASSAGES: ContextPassage[] = [
  {
    n: 1,
    title: 'Travel policy',
    text:
      'Employees book travel through the company portal. Economy class is the default for flights under six hours. ' +
      'Business class may be booked for flights longer than six hours, with a manager\'s approval. ' +
      'Hotel stays are reimbursed up to 180 EUR per night.',
  },
  {
    n: 2,
    title: 'Expenses',
    text:
      '## Submitting expenses\n' +
      '- Expense reports are due within 30 days of the trip\n' +
      '- Receipts must be attached for every item above 25 EUR\n' +
      'Late reports are reimbursed in the following month, e.g. a report filed in May is paid in June.',
  },
  {
    n: 3,
    title: 'Office',
    text: 'The Berlin office opens at 8 am. Visitors sign in at the reception desk on the ground floor.',
  },
];

function request(question: string, overrides: Partial<CompletionRequest> = {}): CompletionRequest {
  const messages: ChatMessage[] = overrides.messages ?? [
    { role: 'system', content: systemContent('Answer from the passages.', PASSAGES) },
    { role: 'user', content: question },
  ];
  return {
    messages,
    promptTokens: countMessageTokens(messages),
    question,
    passages: PASSAGES,
    maxTokens: 200,
    signal: new AbortController().signal,
    ...overrides,
  };
}

async function collect(stream: AsyncIterable<CompletionChunk>): Promise<CompletionChunk[]> {
  const chunks: CompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const textOf = (chunks: CompletionChunk[]) => chunks.map((chunk) => (chunk.kind === 'token' ? chunk.text : '')).join('');

describe('local extractive answerer', () => {
  test('answers with the sentence that covers the question, cited, one word per token', async () => {
    const req = request('Can I book business class on long flights?');
    const chunks = await collect(new LocalAnswerer().stream(req));

    const expected = "Business class may be booked for flights longer than six hours, with a manager's approval. [1]";
    assert.equal(textOf(chunks), expected);
    const tokens = chunks.filter((chunk) => chunk.kind === 'token');
    assert.deepEqual(
      tokens.map((chunk) => chunk.text),
      expected.split(' ').map((word, i, words) => (i < words.length - 1 ? `${word} ` : word)),
    );
    assert.deepEqual(chunks.at(-1), { kind: 'usage', promptTokens: countMessageTokens(req.messages), completionTokens: tokens.length });
  });

  test('quotes several matching sentences in reading order, each with its passage number', async () => {
    const chunks = await collect(new LocalAnswerer().stream(request('When are expense reports due, and are receipts needed for each item?')));
    assert.equal(
      textOf(chunks),
      'Expense reports are due within 30 days of the trip. [2] Receipts must be attached for every item above 25 EUR. [2]',
    );
  });

  test('cites the passage a sentence comes from, whichever it is', async () => {
    const chunks = await collect(new LocalAnswerer().stream(request('What time does the Berlin office open?')));
    assert.equal(textOf(chunks), 'The Berlin office opens at 8 am. [3]');
  });

  test('is deterministic: the same request streams the same chunks', async () => {
    const answerer = new LocalAnswerer();
    const question = 'How much is reimbursed for hotel stays per night?';
    const first = await collect(answerer.stream(request(question)));
    const second = await collect(new LocalAnswerer().stream(request(question)));
    assert.deepEqual(first, second);
    assert.equal(textOf(first), 'Hotel stays are reimbursed up to 180 EUR per night. [1]');
  });

  test('says it could not find an answer when nothing in the passages matches', async () => {
    const chunks = await collect(new LocalAnswerer().stream(request('What is the parental leave allowance in Norway?')));
    assert.equal(textOf(chunks), NOT_FOUND_ANSWER);
    assert.equal(NOT_FOUND_ANSWER, 'I could not find this in the knowledge base.');
    assert.doesNotMatch(textOf(chunks), /\[\d+\]/);

    const none = await collect(new LocalAnswerer().stream(request('Can I book business class?', { passages: [] })));
    assert.equal(textOf(none), NOT_FOUND_ANSWER);
  });

  test('a stopword-only overlap is no match', () => {
    assert.deepEqual(answerSentences('Is it the one that was there?', PASSAGES), []);
  });

  test('stops at maxTokens and reports the tokens it streamed', async () => {
    const chunks = await collect(new LocalAnswerer().stream(request('Can I book business class on long flights?', { maxTokens: 4 })));
    assert.equal(textOf(chunks), 'Business class may be ');
    assert.equal((chunks.at(-1) as { completionTokens: number }).completionTokens, 4);
  });

  test('streams with the configured delay per token, and stops when the signal aborts', async () => {
    const controller = new AbortController();
    const answerer = new LocalAnswerer({ tokenDelayMs: 25 });
    const seen: string[] = [];
    const started = performance.now();

    await assert.rejects(
      (async () => {
        for await (const chunk of answerer.stream(request('Can I book business class on long flights?', { signal: controller.signal }))) {
          if (chunk.kind === 'token') seen.push(chunk.text);
          if (seen.length === 3) controller.abort();
        }
      })(),
      (error: Error) => error.name === 'AbortError',
    );

    assert.deepEqual(seen, ['Business ', 'class ', 'may ']);
    assert.ok(performance.now() - started >= 70, 'three tokens took three delays');
  });

  test('an already aborted request streams nothing', async () => {
    const controller = new AbortController();
    controller.abort();
    const seen: CompletionChunk[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of new LocalAnswerer().stream(request('Can I book business class?', { signal: controller.signal }))) seen.push(chunk);
      })(),
      (error: Error) => error.name === 'AbortError',
    );
    assert.deepEqual(seen, []);
  });

  test('splits passages into sentences: list items are sentences, headings and fragments left out, abbreviations kept whole', () => {
    assert.deepEqual(splitSentences(PASSAGES[1]!.text), [
      'Expense reports are due within 30 days of the trip.',
      'Receipts must be attached for every item above 25 EUR.',
      'Late reports are reimbursed in the following month, e.g. a report filed in May is paid in June.',
    ]);
    assert.deepEqual(splitSentences('Dr. Smith approves requests. She answers within 2 days! Why? Because.'), [
      'Dr. Smith approves requests.',
      'She answers within 2 days!',
    ]);
  });
});
