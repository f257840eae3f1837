import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, fetch } from 'undici';
import { createHttpApp } from '@jarvis/platform/http';
import { createLogger } from '@jarvis/platform/logger';

test('closing finishes in-flight requests, refuses new ones and does not wait for keep-alive clients', async () => {
  const app = createHttpApp(createLogger('test', 'silent'));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  app.get('/slow', async () => {
    await released;
    return { finished: true };
  });
  app.get('/fast', async () => ({ ok: true }));
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const client = new Agent({ keepAliveTimeout: 60_000 });
  try {
    assert.equal((await fetch(`${address}/fast`, { dispatcher: client })).status, 200); // a kept-alive connection
    const inFlight = fetch(`${address}/slow`, { dispatcher: client });
    await sleep(50);

    const startedClosing = Date.now();
    const closed = app.close();
    await sleep(50);
    const refused = await fetch(`${address}/fast`).then((r) => r.status, () => 'connection refused');
    assert.notEqual(refused, 200);

    release();
    const response = await inFlight;
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { finished: true });
    await closed;
    assert.ok(Date.now() - startedClosing < 2_000, 'close waited for the keep-alive connection');
  } finally {
    await client.close();
  }
});
