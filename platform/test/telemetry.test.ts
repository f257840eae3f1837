import assert from 'node:assert/strict';
import { test } from 'node:test';
import { traced, tracingEnabled, tracingRequested } from '@jarvis/platform/telemetry';

test('tracing is off by default and on when the standard OTEL_* variables name an exporter', () => {
  assert.equal(tracingRequested({}), false);
  assert.equal(tracingRequested({ OTEL_SERVICE_NAME: 'jarvis-gateway' }), false, 'a name alone exports nothing');
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }), true);
  assert.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' }), true);
  assert.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), false);
  assert.equal(tracingRequested({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), false);
});

test('with tracing off, traced work runs as it is, without a span', async () => {
  assert.equal(tracingEnabled(), false);
  assert.equal(await traced('work', {}, async (span) => span), undefined);
  await assert.rejects(traced('failing', {}, async () => Promise.reject(new Error('passes through'))), /passes through/);
});
