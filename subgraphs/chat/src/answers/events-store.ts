/** Each answer's events, in seq order: the record every subscriber reads, on any replica, resuming or not. */
import type { Transaction } from '@jarvis/platform/db';
import type { StoredCitation } from '../messages/store.ts';

export const STORED_EVENT_TYPES = ['TOKEN', 'CITATIONS', 'USAGE', 'DONE', 'ERROR'] as const;
export type StoredEventType = (typeof STORED_EVENT_TYPES)[number];

export interface AnswerUsage {
  model: string;
  promptTokens: number;
  completionTokens: number;
  cost: number;
  cacheHit: 'EXACT' | 'SEMANTIC' | null;
}

export interface AnswerEventPayload {
  delta?: string;
  citations?: StoredCitation[];
  usage?: AnswerUsage;
  error?: { code: string; message: string };
}

export interface AnswerEvent extends AnswerEventPayload {
  messageId: string;
  seq: number;
  type: StoredEventType | 'HEARTBEAT';
}

export interface StoredEvent {
  messageId: string;
  tenantId: string;
  seq: number;
  type: StoredEventType;
  payload: AnswerEventPayload;
}

export const isTerminal = (type: AnswerEvent['type']) => type === 'DONE' || type === 'ERROR';

export async function appendEvents(tx: Transaction, events: readonly StoredEvent[]): Promise<void> {
  if (events.length === 0) return;
  await tx.query(
    `INSERT INTO answer_events (message_id, tenant_id, seq, type, payload)
     SELECT message_id, tenant_id, seq, type, payload
     FROM jsonb_to_recordset($1::jsonb) AS e(message_id uuid, tenant_id uuid, seq integer, type text, payload jsonb)`,
    [JSON.stringify(events.map((e) => ({ message_id: e.messageId, tenant_id: e.tenantId, seq: e.seq, type: e.type, payload: e.payload })))],
  );
}

export async function eventsAfter(tx: Transaction, messageId: string, afterSeq: number, limit: number): Promise<AnswerEvent[]> {
  const rows = await tx.query<{ seq: number; type: StoredEventType; payload: AnswerEventPayload }>(
    `SELECT seq, type, payload FROM answer_events WHERE message_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
    [messageId, afterSeq, limit],
  );
  return rows.map((row) => ({ messageId, seq: row.seq, type: row.type, ...row.payload }));
}
