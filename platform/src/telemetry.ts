/**
 * Tracing with OpenTelemetry. Off unless the standard OTEL_* variables ask for a trace exporter
 * (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_TRACES_EXPORTER; OTEL_SDK_DISABLED
 * wins): the Node SDK then exports spans as those variables say. Metrics are Prometheus's (see metrics.ts),
 * so the SDK exports traces only. While tracing is off, `traced` runs its work with no span at all.
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';

export { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';

const tracer = trace.getTracer('jarvis');
let enabled = false;

export interface Telemetry {
  /** Exports the spans still buffered, then stops tracing. */
  shutdown(): Promise<void>;
}

export interface TelemetryOptions {
  /** `service.name` unless OTEL_SERVICE_NAME says otherwise. */
  serviceName: string;
  /** Where spans go instead of the exporter the environment names (tests use an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
  env?: NodeJS.ProcessEnv;
}

/** Whether the environment asks for traces to be exported. */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return false;
  const exporters = env.OTEL_TRACES_EXPORTER?.split(',').map((name) => name.trim()).filter(Boolean);
  if (exporters?.length) return !exporters.includes('none');
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Starts the SDK once per process, before any service is created, when tracing is requested or processors are given. */
export function startTelemetry({ serviceName, spanProcessors, env = process.env }: TelemetryOptions): Telemetry {
  if (!spanProcessors && !tracingRequested(env)) return { shutdown: async () => {} };
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? serviceName,
    ...(spanProcessors ? { spanProcessors } : {}),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
  });
  sdk.start();
  enabled = true;
  return {
    async shutdown() {
      enabled = false;
      await sdk.shutdown();
    },
  };
}

export const tracingEnabled = () => enabled;

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The parent, when it is not the active context (a message's producer, a request's caller). */
  parent?: Context;
  /**
   * No span unless the parent context has one: for work that is only worth a span as part of a larger one (a
   * statement of a request), not when a background loop (a relay polling its table) does it on its own.
   */
  requireParent?: boolean;
}

/**
 * Runs `work` in a span of its own, the child of the active one (or of `parent`), ended when `work` settles;
 * a failure is recorded on it. With tracing off, `work` runs as it is, with no span.
 */
export function traced<T>(name: string, options: SpanOptions, work: (span?: Span) => Promise<T>): Promise<T> {
  if (!enabled) return work();
  const { parent = context.active(), requireParent = false, ...spanOptions } = options;
  if (requireParent && !trace.getSpan(parent)) return work();
  return tracer.startActiveSpan(name, spanOptions, parent, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      failed(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Marks `span` failed with `error`. */
function failed(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

/** Starts a span that the caller ends (one that outlives a callback, such as a request's), or none when off. */
export function startSpan(name: string, { parent = context.active(), ...options }: SpanOptions = {}): Span | undefined {
  return enabled ? tracer.startSpan(name, options, parent) : undefined;
}

/** The context `span` is active in; the active context when there is no span. */
export const withSpan = (span: Span | undefined, parent: Context = context.active()): Context => (span ? trace.setSpan(parent, span) : parent);

/** Runs `work` with `ctx` active, so the spans it starts (and their propagated headers) descend from it. */
export const inContext = <T>(ctx: Context, work: () => T): T => context.with(ctx, work);

/** Adds `traceparent` (and `tracestate`) for the active span to `carrier`, for a call to another service. */
export function injectTraceHeaders(carrier: Record<string, string>, ctx: Context = context.active()): Record<string, string> {
  if (enabled) propagation.inject(ctx, carrier);
  return carrier;
}

/** The active span's W3C trace context, to carry in a message; undefined while tracing is off or no span is active. */
export function currentTraceContext(): Record<string, string> | undefined {
  const carrier = injectTraceHeaders({});
  return Object.keys(carrier).length > 0 ? carrier : undefined;
}

/** The caller's span context from incoming headers, as the parent of this service's span. */
export function extractTraceContext(headers: Record<string, string | string[] | undefined>): Context {
  if (!enabled) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, headers, {
    keys: (carrier) => Object.keys(carrier),
    get: (carrier, key) => {
      const value = carrier[key];
      return Array.isArray(value) ? value[0] : value;
    },
  });
}

/** `trace_id` and `span_id` of the active span, for log lines; nothing when no span is recording. */
export function traceIds(): { trace_id?: string; span_id?: string } {
  if (!enabled) return {};
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}
