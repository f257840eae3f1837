/**
 * An answer whose generator died (nobody touches it any more) is ended by the sweep: its text is what its
 * events hold, its status ERROR, and its last event an ERROR (INTERRUPTED) after the others, so readers stop
 * waiting. Answers still touched are left alone.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Database } from '@jarvis/platform/db';
import { createLogger } from '@jarvis/platform/logger';
import { QUOTA_OVERRIDES_MIGRATIONS } from '@jarvis/platform/quota-overrides';
import { databaseVariants, openTestDatabase } from '@jarvis/platform/testing';
import { startAnswerSweep } from '../src/answers/sweep.ts';
import { appendEvents, eventsAfter } from '../src/answers/events-store.ts';
import { insertConversation } from '../src/conversations/store.ts';
import { insertMessage, messagesByIds } from '../src/messages/store.ts';

const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));

for (const variant of databaseVariants()) {
  describe(`the answer sweep on ${variant.name}`, { skip: variant.skip }, () => {
    let db: Database & { close(): Promise<void> };
    const tenantId = randomUUID();
    before(async () => {
      db = await openTestDatabase(variant, 'chat');
      await db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
    });
    after(() => db?.close());

    async function streamingAnswer(tokens: string[], untouchedForMs: number): Promise<string> {
      const id = randomUUID();
      await db.withTenant(tenantId, async (tx) => {
        const conversation = await insertConversation(tx, { id: randomUUID(), tenantId, title: 'Sweep', createdById: null });
        await insertMessage(tx, { id, tenantId, conversationId: conversation.id, role: 'ASSISTANT', content: '', status: 'STREAMING', authorId: null });
        await appendEvents(tx, tokens.map((delta, i) => ({ messageId: id, tenantId, seq: i + 1, type: 'TOKEN' as const, payload: { delta } })));
        await tx.query(`UPDATE messages SET touched_at = clock_timestamp() - $2 * interval '1 millisecond' WHERE id = $1`, [id, untouchedForMs]);
      });
      return id;
    }

    test('a stale STREAMING answer ends in ERROR after its events; a touched one is left alone', async () => {
      const lost = await streamingAnswer(['Half ', 'an ', 'answer'], 120_000);
      const alive = await streamingAnswer(['Still ', 'going'], 1_000);
      const sweeper = startAnswerSweep({ db, log: createLogger('sweep', 'silent'), staleAfterMs: 60_000, everyMs: 3_600_000 });
      try {
        assert.equal(await sweeper.sweep(), 1);
        assert.equal(await sweeper.sweep(), 0, 'ended once');
      } finally {
        sweeper.stop();
      }
      const [ended, running] = await db.withTenant(tenantId, async (tx) => {
        const rows = await messagesByIds(tx, [lost, alive]);
        return [rows.find((m) => m.id === lost)!, rows.find((m) => m.id === alive)!];
      });
      assert.deepEqual([ended.status, ended.content], ['ERROR', 'Half an answer']);
      assert.match(ended.error ?? '', /went away/);
      assert.equal(running.status, 'STREAMING');
      const events = await db.withTenant(tenantId, (tx) => eventsAfter(tx, lost, 0, 100));
      assert.deepEqual(events.map((e) => [e.seq, e.type]), [[1, 'TOKEN'], [2, 'TOKEN'], [3, 'TOKEN'], [4, 'ERROR']]);
      assert.equal(events.at(-1)!.error?.code, 'INTERRUPTED');
    });
  });
}
