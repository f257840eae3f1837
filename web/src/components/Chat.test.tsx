/**
 * Chat: an answer streams over answerStream (graphql-ws) token by token, gets its citations, and ends on DONE or
 * ERROR; a stream cut short is picked up again with no gap and no repeat. The server side is a fake gateway that
 * keeps the answer's events in order and replays those after each subscription's afterSeq, as the chat subgraph
 * does (its events are stored, so any afterSeq can be replayed).
 */
import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AnswerStreamSubscription, CitationFieldsFragment } from '../gql/graphql';
import { FakeGateway, type FakeSubscription } from '../test/fake-gateway';
import { renderSignedIn } from '../test/render';
import { Chat } from './Chat';

type AnswerEvent = AnswerStreamSubscription['answerStream'];

const ANSWER_ID = 'a3f4c1de-0000-4000-8000-000000000001';
const QUESTION = 'Why is the sky blue?';

const event = (seq: number, type: AnswerEvent['type'], fields: Partial<AnswerEvent> = {}): AnswerEvent => ({
  messageId: ANSWER_ID,
  seq,
  type,
  delta: null,
  citations: null,
  usage: null,
  error: null,
  ...fields,
});
const token = (seq: number, delta: string) => event(seq, 'TOKEN', { delta });
const done = (seq: number) => event(seq, 'DONE');
/** A heartbeat repeats the last seq sent. */
const heartbeat = (seq: number) => event(seq, 'HEARTBEAT');

const SKY_FACTS: CitationFieldsFragment = {
  n: 1,
  passageId: 'passage-1',
  title: 'Sky facts',
  text: 'Shorter wavelengths scatter more: Rayleigh scattering.',
  startOffset: 120,
  endOffset: 174,
  document: { id: 'doc-1', title: 'atmosphere.md' },
  knowledgeBase: { id: 'kb-1', name: 'Physics notes' },
};

/**
 * The answer's side of the fake gateway: `produce` appends an event to the answer (and sends it to every live
 * subscriber); each new AnswerStream subscription first gets the stored events after its afterSeq.
 */
class AnswerServer {
  readonly events: AnswerEvent[] = [];

  constructor(private readonly gateway: FakeGateway) {
    gateway.onSubscribe = (subscription) => {
      if (subscription.operationName !== 'AnswerStream') return;
      const afterSeq = Number(subscription.variables.afterSeq ?? 0);
      for (const stored of this.events.filter((e) => e.seq > afterSeq)) subscription.next({ answerStream: stored });
    };
  }

  get streams(): FakeSubscription[] {
    return this.gateway.subscriptionsTo('AnswerStream');
  }

  /** Stores the event and sends it to the live subscriptions; wrapped in act (it renders). */
  produce(...events: AnswerEvent[]): void {
    act(() => {
      for (const e of events) {
        this.events.push(e);
        for (const stream of this.streams.filter((s) => !s.stopped)) stream.next({ answerStream: e });
      }
    });
  }

  /** Sends an event to the live subscriptions without storing it (HEARTBEAT is never stored). */
  beat(e: AnswerEvent): void {
    act(() => this.streams.filter((s) => !s.stopped).forEach((s) => s.next({ answerStream: e })));
  }

  /** Waits until the client has made `count` AnswerStream subscriptions and returns the last. */
  async subscribed(count: number): Promise<FakeSubscription> {
    await waitFor(() => expect(this.streams).toHaveLength(count));
    return this.streams[count - 1]!;
  }
}

function setUp() {
  const gateway = new FakeGateway().install();
  gateway.answer('Conversations', () => ({ data: { tenant: { id: 'tenant-1', conversations: [] } } }));
  gateway.answer('Ask', ({ variables }) => ({
    data: {
      ask: {
        conversation: { id: 'conversation-1', title: QUESTION },
        question: { id: 'question-1', content: (variables.input as { question: string }).question },
        answer: { id: ANSWER_ID, status: 'STREAMING' },
      },
    },
  }));
  const server = new AnswerServer(gateway);
  const onAnswered = vi.fn();
  renderSignedIn(<Chat knowledgeBase={null} onAnswered={onAnswered} />);
  return { gateway, server, onAnswered };
}

async function ask(question = QUESTION) {
  const user = userEvent.setup();
  await user.type(screen.getByPlaceholderText('Ask a question about your documents'), question);
  await user.click(screen.getByRole('button', { name: 'Ask' }));
  return user;
}

/** The latest answer as the reader sees it, without the typing cursor shown while it streams. */
const answerText = () => screen.getByTestId('chat-answer').textContent!.replace('▍', '');
const isStreaming = () => screen.getByTestId('chat-answer').textContent!.includes('▍');

afterEach(() => {
  vi.useRealTimers();
});

describe('Chat', () => {
  it('renders each TOKEN as it arrives and ends the answer on DONE', async () => {
    const { server, onAnswered } = setUp();
    await ask();

    const stream = await server.subscribed(1);
    expect(stream.variables).toEqual({ messageId: ANSWER_ID, afterSeq: 0 });
    expect(stream.request.authorization).toBe('Bearer access-acme');
    expect(screen.getByText(QUESTION)).toBeInTheDocument();
    expect(screen.getByText('thinking…')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Answering…' })).toBeDisabled();

    server.produce(token(1, 'Blue light '));
    expect(answerText()).toBe('Blue light ');
    expect(isStreaming()).toBe(true);
    expect(screen.queryByText('thinking…')).not.toBeInTheDocument();

    server.produce(token(2, 'scatters most.'));
    expect(answerText()).toBe('Blue light scatters most.');
    expect(onAnswered).not.toHaveBeenCalled();

    server.produce(done(3));
    expect(answerText()).toBe('Blue light scatters most.');
    expect(isStreaming()).toBe(false);
    expect(screen.getByRole('button', { name: 'Ask' })).toBeInTheDocument();
    expect(onAnswered).toHaveBeenCalledTimes(1);
    // The console stopped listening: it told the server it is done with the subscription.
    expect(stream.stopped).toBe(true);
  });

  it('turns the [n] markers into clickable citations once CITATIONS arrive, each opening its passage', async () => {
    const { server } = setUp();
    const user = await ask();
    await server.subscribed(1);

    server.produce(token(1, 'Rayleigh scattering [1].'));
    const answer = screen.getByTestId('chat-answer');
    expect(within(answer).queryByRole('button')).not.toBeInTheDocument();

    server.produce(event(2, 'CITATIONS', { citations: [SKY_FACTS] }), done(3));
    expect(answerText()).toBe('Rayleigh scattering [1].');
    const marker = within(answer).getByRole('button', { name: '[1]' });
    const listed = screen.getByRole('button', { name: '[1] Sky facts' });
    expect(screen.queryByTestId('citation-detail')).not.toBeInTheDocument();

    await user.click(marker);
    const detail = screen.getByTestId('citation-detail');
    expect(detail).toHaveTextContent('Shorter wavelengths scatter more: Rayleigh scattering.');
    expect(detail).toHaveTextContent('Document: atmosphere.md');
    expect(detail).toHaveTextContent('Knowledge base: Physics notes');

    await user.click(within(detail).getByRole('button', { name: 'close' }));
    expect(screen.queryByTestId('citation-detail')).not.toBeInTheDocument();
    await user.click(listed);
    expect(screen.getByTestId('citation-detail')).toHaveTextContent('[1] Sky facts');
  });

  it('shows an ERROR event with its code and ends the answer', async () => {
    const { server, onAnswered } = setUp();
    await ask();
    const stream = await server.subscribed(1);

    server.produce(token(1, 'Blue'));
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    server.produce(event(2, 'ERROR', { error: { code: 'MODEL_UNAVAILABLE', message: 'the model did not answer in time' } }));

    const alert = screen.getByRole('alert');
    expect(alert).toHaveTextContent('MODEL_UNAVAILABLE the model did not answer in time');
    expect(alert).toHaveAttribute('data-code', 'MODEL_UNAVAILABLE');
    expect(answerText()).toBe('Blue');
    expect(isStreaming()).toBe(false);
    expect(screen.getByRole('button', { name: 'Ask' })).toBeInTheDocument();
    expect(onAnswered).toHaveBeenCalledTimes(1);
    expect(stream.stopped).toBe(true);
  });

  it('shows nothing for HEARTBEAT events, before or between tokens', async () => {
    const { server } = setUp();
    await ask();
    await server.subscribed(1);

    server.beat(heartbeat(0));
    expect(answerText()).toBe('');
    expect(isStreaming()).toBe(false);
    expect(screen.getByText('thinking…')).toBeInTheDocument();

    server.produce(token(1, 'Blue'));
    server.beat(heartbeat(1));
    server.beat(heartbeat(1));
    expect(answerText()).toBe('Blue');

    server.produce(token(2, ' light.'), done(3));
    expect(answerText()).toBe('Blue light.');
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it.each([
    { cut: 'the server completes the stream before DONE', end: (stream: FakeSubscription) => stream.complete() },
    {
      cut: 'the socket closes with a code graphql-ws does not retry (4500)',
      end: (stream: FakeSubscription, gateway: FakeGateway) => gateway.sockets.at(-1)!.drop(4500, 'Internal server error'),
    },
  ])('when $cut, subscribes again after the last seq it saw, with no gap and no repeat', async ({ end }) => {
    const { gateway, server, onAnswered } = setUp();
    await ask();
    const first = await server.subscribed(1);

    server.produce(token(1, 'One, '), token(2, 'two, '));
    act(() => end(first, gateway));
    // Written while no one was listening: only a resume after seq 2 gets it.
    server.produce(token(3, 'three, '));
    expect(answerText()).toBe('One, two, ');

    const second = await server.subscribed(2);
    expect(second.variables).toEqual({ messageId: ANSWER_ID, afterSeq: 2 });
    await waitFor(() => expect(answerText()).toBe('One, two, three, '));

    server.produce(token(4, 'four.'), done(5));
    expect(answerText()).toBe('One, two, three, four.');
    expect(isStreaming()).toBe(false);
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    expect(onAnswered).toHaveBeenCalledTimes(1);
  });

  it('after the socket drops (1006), reconnects and shows the events the server replays exactly once', async () => {
    const { gateway, server } = setUp();
    await ask();
    const first = await server.subscribed(1);
    server.produce(token(1, 'One, '), token(2, 'two, '));

    // graphql-ws waits 1.3–4 s before it reconnects; skip that wait.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    act(() => gateway.sockets[0]!.drop(1006));
    expect(first.stopped).toBe(true);
    server.produce(token(3, 'three, '));
    await act(() => vi.advanceTimersByTimeAsync(5_000));
    vi.useRealTimers();

    const again = await server.subscribed(2);
    expect(gateway.sockets).toHaveLength(2);
    // graphql-ws repeats the subscription as it was first sent; the server replays from there.
    expect(again.variables).toEqual({ messageId: ANSWER_ID, afterSeq: 0 });
    await waitFor(() => expect(answerText()).toBe('One, two, three, '));

    server.produce(token(4, 'four.'), done(5));
    expect(answerText()).toBe('One, two, three, four.');
    expect(isStreaming()).toBe(false);
  });
});
