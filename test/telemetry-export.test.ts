/**
 * Tracing as an operator turns it on: a service started by scripts/serve.ts with the standard OTEL_* variables
 * exports its spans over OTLP/HTTP to a collector (here a local server reading OTLP's JSON encoding), and
 * SIGTERM flushes what is still batched before the process exits.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { ANONYMOUS, PRINCIPAL_HEADER, principalSigner } from '@jarvis/platform/contracts';
import { freePort, waitFor } from '@jarvis/platform/testing';

interface ExportedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
}

/** An OTLP/HTTP collector for JSON-encoded traces: every span it receives, with its resource's service.name. */
async function startCollector(): Promise<{ url: string; spans: ExportedSpan[]; server: Server }> {
  const spans: ExportedSpan[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      if (request.url === '/v1/traces') {
        for (const resourceSpans of JSON.parse(body).resourceSpans ?? []) {
          const service = resourceSpans.resource.attributes.find((a: { key: string }) => a.key === 'service.name')?.value.stringValue;
          for (const scope of resourceSpans.scopeSpans) for (const span of scope.spans) spans.push({ service, ...span });
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, server };
}

async function runTenancy(env: Record<string, string>, work: (url: string, secret: string) => Promise<void>): Promise<void> {
  const secret = 'telemetry-export-test-secret-of-32-characters';
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/serve.ts', 'tenancy'], {
    env: { ...process.env, DATABASE_URL: '', DATA_DIR: 'memory://', TENANCY_PORT: String(port), INTERNAL_AUTH_SECRET: secret, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = once(child, 'exit');
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitFor(() => fetch(`${base}/readyz`).then((r) => r.ok, () => false), 'tenancy to be ready', { timeoutMs: 60_000, intervalMs: 200 });
    await work(`${base}/graphql`, secret);
  } finally {
    child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, 'a clean exit on SIGTERM');
  }
}

async function askPermissions(url: string, secret: string): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [PRINCIPAL_HEADER]: await principalSigner(secret).sign(ANONYMOUS), traceparent: `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01` },
    body: JSON.stringify({ query: 'query Permissions { permissions { name } }', operationName: 'Permissions' }),
  });
  assert.equal(response.status, 200);
}

test('with OTEL_EXPORTER_OTLP_ENDPOINT set, a service exports its spans, the caller\'s trace continued, and SIGTERM flushes them', async () => {
  const collector = await startCollector();
  try {
    await runTenancy(
      { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'tenancy-under-test', OTEL_BSP_SCHEDULE_DELAY: '60000' },
      async (url, secret) => {
        await askPermissions(url, secret);
        assert.equal(collector.spans.length, 0, 'batched for a minute: nothing exported before shutdown');
      },
    );
    const request = collector.spans.find((span) => span.name === 'graphql Permissions');
    assert.ok(request, `the request's span was flushed at shutdown: ${collector.spans.map((s) => s.name).join(', ')}`);
    assert.equal(request.service, 'tenancy-under-test');
    assert.equal(request.traceId, 'ab'.repeat(16), 'the trace of the caller named in traceparent');
    assert.equal(request.parentSpanId, 'cd'.repeat(8));
  } finally {
    collector.server.close();
  }
});
