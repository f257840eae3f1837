import { Fragment, useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { toErrorInfos, type ApiErrorInfo } from '../api/errors';
import { useClient, useErrors, useQuery } from '../api/hooks';
import {
  AnswerStreamDocument,
  AskDocument,
  ConversationDocument,
  ConversationsDocument,
  type AnswerStreamSubscription,
  type CitationFieldsFragment,
  type KnowledgeBaseFieldsFragment,
  type MessageFieldsFragment,
} from '../gql/graphql';
import { ErrorList } from './ErrorList';
import { time } from './format';
import { OnlySelected, onlyIds } from './OnlySelected';

type AnswerUsage = NonNullable<AnswerStreamSubscription['answerStream']['usage']>;

interface Turn {
  key: string;
  question: string;
  answerId?: string;
  text: string;
  citations: CitationFieldsFragment[];
  usage?: AnswerUsage;
  model?: string | null;
  status: 'asking' | 'waiting' | 'streaming' | 'done' | 'error' | 'cancelled';
  errors?: ApiErrorInfo[];
}

/** How many times a stream that ended before DONE or ERROR is picked up again after its last seq. */
const RESUMES = 5;

/** Stops following every answer in `streams`. */
function stopAll(streams: Map<string, () => void>) {
  for (const stop of streams.values()) stop();
  streams.clear();
}

let turnCounter = 0;
const newKey = () => `turn-${++turnCounter}`;

/** The answer's text with its [n] markers as buttons that open the passage they cite. */
function AnswerText({ text, citations, onCite }: { text: string; citations: CitationFieldsFragment[]; onCite: (c: CitationFieldsFragment) => void }) {
  return (
    <>
      {text.split(/(\[\d+\])/).map((part, i) => {
        const n = /^\[(\d+)\]$/.exec(part)?.[1];
        const citation = n ? citations.find((c) => c.n === Number(n)) : undefined;
        return citation ? (
          <button key={i} type="button" className="cite" onClick={() => onCite(citation)} title={citation.title}>
            {part}
          </button>
        ) : (
          <Fragment key={i}>{part}</Fragment>
        );
      })}
    </>
  );
}

function turnsFrom(messages: MessageFieldsFragment[]): Turn[] {
  const turns: Turn[] = [];
  for (const message of messages) {
    if (message.role === 'USER') {
      turns.push({ key: newKey(), question: message.content, text: '', citations: [], status: 'done' });
      continue;
    }
    const status = message.status === 'STREAMING' ? 'streaming' : message.status === 'DONE' ? 'done' : message.status === 'ERROR' ? 'error' : 'cancelled';
    const answer: Partial<Turn> = {
      answerId: message.id,
      text: message.content,
      citations: message.citations,
      model: message.model,
      status,
      errors: message.error ? [{ message: message.error, code: message.status }] : undefined,
    };
    const last = turns.at(-1);
    if (last && !last.answerId) Object.assign(last, answer);
    else turns.push({ key: newKey(), question: '', text: '', citations: [], status: 'done', ...answer });
  }
  return turns;
}

/** Ask a question; the answer streams from answerStream token by token, then its numbered citations. */
export function Chat({ knowledgeBase, onAnswered }: { knowledgeBase: KnowledgeBaseFieldsFragment | null; onAnswered: () => void }) {
  const client = useClient();
  const conversations = useQuery(ConversationsDocument, { first: 20 });
  const [conversation, setConversation] = useState<{ id: string; title: string } | null>(null);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [question, setQuestion] = useState('');
  const [scoped, setScoped] = useState(false);
  const [cited, setCited] = useState<CitationFieldsFragment | null>(null);
  const failures = useErrors();
  const streams = useRef(new Map<string, () => void>());
  const onAnsweredRef = useRef(onAnswered);
  onAnsweredRef.current = onAnswered;

  useEffect(() => {
    const open = streams.current;
    return () => stopAll(open);
  }, []);

  const update = (key: string, change: (turn: Turn) => Partial<Turn>) =>
    setTurns((current) => current.map((turn) => (turn.key === key ? { ...turn, ...change(turn) } : turn)));

  /** Follows an answer's events from the start; a stream cut short resumes after the last seq received. */
  function follow(key: string, messageId: string) {
    let lastSeq = 0;
    let finished = false;
    let resumes = 0;
    let stop = () => {};
    const end = () => {
      finished = true;
      stop();
      streams.current.delete(key);
    };
    const resume = (errors?: ApiErrorInfo[]) => {
      if (finished) return;
      if (resumes++ < RESUMES) {
        setTimeout(() => !finished && start(), 300 * resumes);
        return;
      }
      end();
      update(key, () => ({ status: 'error', errors: errors ?? [{ message: 'the answer stream ended early', code: 'STREAM_ENDED' }] }));
    };
    const start = () => {
      stop = client.subscribe(AnswerStreamDocument, { messageId, afterSeq: lastSeq }, {
        next: ({ data, errors }) => {
          if (errors?.length) {
            end();
            update(key, () => ({ status: 'error', errors }));
            return;
          }
          const event = data?.answerStream;
          if (!event) return;
          if (event.type === 'HEARTBEAT') {
            update(key, (turn) => (turn.status === 'asking' ? { status: 'waiting' } : {}));
            return;
          }
          // After a reconnection the client may see events again: each seq counts once.
          if (event.seq <= lastSeq) return;
          lastSeq = event.seq;
          switch (event.type) {
            case 'TOKEN':
              update(key, (turn) => ({ status: 'streaming', text: turn.text + (event.delta ?? '') }));
              break;
            case 'CITATIONS':
              update(key, () => ({ citations: event.citations ?? [] }));
              break;
            case 'USAGE':
              update(key, () => ({ usage: event.usage ?? undefined, model: event.usage?.model }));
              break;
            case 'DONE':
              end();
              update(key, () => ({ status: 'done' }));
              onAnsweredRef.current();
              break;
            case 'ERROR':
              end();
              update(key, () => ({ status: 'error', errors: [{ message: event.error?.message ?? 'the answer failed', code: event.error?.code }] }));
              onAnsweredRef.current();
              break;
          }
        },
        error: (errors) => resume(errors),
        complete: () => resume(),
      });
      streams.current.set(key, () => {
        finished = true;
        stop();
      });
    };
    start();
  }

  async function ask(event?: FormEvent) {
    event?.preventDefault();
    const text = question.trim();
    if (!text) return;
    failures.clear();
    setCited(null);
    const key = newKey();
    setTurns((current) => [...current, { key, question: text, text: '', citations: [], status: 'asking' }]);
    setQuestion('');
    try {
      const result = await client.request(AskDocument, {
        input: {
          question: text,
          conversationId: conversation?.id ?? null,
          knowledgeBaseIds: onlyIds(scoped, knowledgeBase),
        },
      });
      const asked = result.data?.ask;
      if (!asked) {
        update(key, () => ({ status: 'error', errors: result.errors ?? [{ message: 'no answer' }] }));
        return;
      }
      if (!conversation) void conversations.refetch();
      setConversation(asked.conversation);
      update(key, () => ({ answerId: asked.answer.id }));
      follow(key, asked.answer.id);
    } catch (error) {
      update(key, () => ({ status: 'error', errors: toErrorInfos(error) }));
    }
  }

  async function open(id: string) {
    setCited(null);
    stopAll(streams.current);
    const found = (await failures.run(() => client.request(ConversationDocument, { id, last: 50 })))?.data?.conversation;
    if (!found) return;
    const loaded = turnsFrom(found.messages);
    // An answer still being written is followed from its start (its events replay in order).
    const streaming = loaded.filter((turn) => turn.status === 'streaming' && turn.answerId);
    for (const turn of streaming) Object.assign(turn, { text: '', citations: [] });
    setConversation({ id: found.id, title: found.title });
    setTurns(loaded);
    for (const turn of streaming) follow(turn.key, turn.answerId!);
  }

  function startOver() {
    stopAll(streams.current);
    setConversation(null);
    setTurns([]);
    setCited(null);
    failures.clear();
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      void ask();
    }
  }

  const latest = turns.at(-1);
  const busy = latest !== undefined && ['asking', 'waiting', 'streaming'].includes(latest.status);

  return (
    <section className="panel chat">
      <h2>
        Chat{conversation ? `: ${conversation.title}` : ''}{' '}
        {conversation && (
          <button type="button" className="link" onClick={startOver}>
            new conversation
          </button>
        )}
      </h2>
      <div className="chat-layout">
        <aside className="conversations">
          <h3>Conversations</h3>
          <ErrorList errors={conversations.errors} />
          <ul className="list">
            {(conversations.data?.tenant?.conversations ?? []).map((c) => (
              <li key={c.id} className={c.id === conversation?.id ? 'item selected' : 'item'} role="button" tabIndex={0} onClick={() => void open(c.id)}>
                {c.title}
                <div className="muted">
                  {c.createdBy?.name ?? 'a service'} · {time(c.createdAt)}
                </div>
              </li>
            ))}
          </ul>
        </aside>
        <div className="thread">
          {turns.map((turn, index) => {
            const isLatest = index === turns.length - 1;
            return (
              <article key={turn.key} className={`turn turn-${turn.status}`}>
                {turn.question && <p className="question">{turn.question}</p>}
                <div className="answer" data-testid={isLatest ? 'chat-answer' : undefined} data-status={turn.status} aria-live={isLatest ? 'polite' : undefined}>
                  <AnswerText text={turn.text} citations={turn.citations} onCite={setCited} />
                  {turn.status === 'streaming' && <span className="cursor">▍</span>}
                </div>
                {(turn.status === 'asking' || turn.status === 'waiting') && <p className="muted">thinking…</p>}
                {turn.errors && <ErrorList errors={turn.errors} />}
                {turn.citations.length > 0 && (
                  <ol className="citations">
                    {turn.citations.map((citation) => (
                      <li key={citation.n}>
                        <button
                          type="button"
                          className={cited === citation ? 'citation selected' : 'citation'}
                          data-testid={isLatest ? 'citation' : undefined}
                          data-n={citation.n}
                          onClick={() => setCited(cited === citation ? null : citation)}
                        >
                          [{citation.n}] {citation.title}
                        </button>
                      </li>
                    ))}
                  </ol>
                )}
                {turn.usage && (
                  <p className="muted small">
                    {turn.usage.model} · {turn.usage.promptTokens} prompt + {turn.usage.completionTokens} completion tokens · ${turn.usage.cost.toFixed(5)}
                    {turn.usage.cacheHit ? ` · cached (${turn.usage.cacheHit.toLowerCase()})` : ''}
                  </p>
                )}
              </article>
            );
          })}
          {cited && (
            <div className="citation-detail" data-testid="citation-detail">
              <h4>
                [{cited.n}] {cited.title}
              </h4>
              <p className="muted">
                Document: <strong>{cited.document?.title ?? '(no longer readable)'}</strong> · Knowledge base:{' '}
                <strong>{cited.knowledgeBase?.name ?? '(no longer readable)'}</strong> · characters {cited.startOffset}–{cited.endOffset}
              </p>
              <blockquote>{cited.text}</blockquote>
              <button type="button" className="link" onClick={() => setCited(null)}>
                close
              </button>
            </div>
          )}
          <form className="ask" onSubmit={(e) => void ask(e)}>
            <textarea
              data-testid="chat-input"
              placeholder="Ask a question about your documents"
              rows={2}
              value={question}
              onChange={(e) => setQuestion(e.target.value)}
              onKeyDown={onKeyDown}
            />
            <div className="row">
              <button data-testid="chat-send" type="submit" disabled={busy || !question.trim()}>
                {busy ? 'Answering…' : 'Ask'}
              </button>
              <OnlySelected knowledgeBase={knowledgeBase} checked={scoped} onChange={setScoped} />
            </div>
          </form>
          <ErrorList errors={failures.errors} onDismiss={failures.clear} />
        </div>
      </div>
    </section>
  );
}
