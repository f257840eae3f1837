/**
 * Writes one answer's events in seq order, a batch at most every `flushMs`: a token per INSERT would make the
 * database the bottleneck, while subscribers still see tokens within a few milliseconds. The last event is
 * written in the transaction that finishes the answer, so an answer is never DONE without its DONE event, or
 * the other way round.
 */
import type { Database, Transaction } from '@jarvis/platform/db';
import { appendEvents, type AnswerEventPayload, type StoredEvent, type StoredEventType } from './events-store.ts';

export class EventWriter {
  private seq = 0;
  private pending: StoredEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly tenantId: string,
    private readonly messageId: string,
    private readonly flushMs: number,
  ) {}

  push(type: Exclude<StoredEventType, 'DONE' | 'ERROR'>, payload: AnswerEventPayload): void {
    this.pending.push(this.event(type, payload));
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
  }

  /** The last event, with whatever else finishing the answer writes, in one transaction after the rest. */
  async end(type: 'DONE' | 'ERROR', payload: AnswerEventPayload, finish: (tx: Transaction) => Promise<void>): Promise<void> {
    this.cancelFlush();
    await this.writing;
    this.cancelFlush(); // a batch that failed meanwhile is back in `pending`, with a timer of its own
    const events = [...this.pending.splice(0), this.event(type, payload)];
    await this.db.withTenant(this.tenantId, async (tx) => {
      await appendEvents(tx, events);
      await finish(tx);
    });
  }

  private cancelFlush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** A batch that fails goes back to the front, to be written with the next: seqs never skip. */
  private flush(): Promise<void> {
    this.timer = undefined;
    const events = this.pending.splice(0);
    this.writing = this.writing
      .then(() => this.db.withTenant(this.tenantId, (tx) => appendEvents(tx, events)))
      .catch(() => {
        this.pending.unshift(...events);
        this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
      });
    return this.writing;
  }

  private event(type: StoredEventType, payload: AnswerEventPayload): StoredEvent {
    return { messageId: this.messageId, tenantId: this.tenantId, seq: ++this.seq, type, payload };
  }
}
