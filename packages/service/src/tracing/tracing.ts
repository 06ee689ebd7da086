import {
  type Attributes,
  type Context,
  context,
  type Span,
  type SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  ParentBasedSampler,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { ensureContextManager } from './context-manager.js';
import { OtlpJsonBatchProcessor } from './otlp-json.batch-processor.js';
import { PooledIdGenerator } from './trace-ids.js';

/** Options of {@link Tracing}. */
export interface TracingOptions {
  readonly service: string;
  readonly instance: string;
  readonly version?: string | undefined;
  /** Off: no spans are made, but incoming trace context still passes through. */
  readonly enabled?: boolean | undefined;
  /** Share of new traces sampled (parent-based), 0..1. */
  readonly sampleRatio?: number | undefined;
  /** OTLP/HTTP collector base URL; spans go to `<url>/v1/traces` in batches. */
  readonly otlpEndpoint?: string | undefined;
  /** An exporter of your own, fed span by span (tests pass an `InMemorySpanExporter`). */
  readonly exporter?: SpanExporter | undefined;
}

/**
 * The service's OpenTelemetry tracing: a tracer provider of its own (not the global one, so
 * several services can share a process), W3C trace context in and out, and helpers for spans
 * around HTTP requests, calls and messages.
 */
export class Tracing {
  readonly enabled: boolean;
  readonly tracer: Tracer;
  readonly #provider: BasicTracerProvider | undefined;

  constructor(options: TracingOptions) {
    ensureContextManager();
    this.enabled = options.enabled ?? true;
    const processors: SpanProcessor[] = [];
    if (options.exporter) processors.push(new SimpleSpanProcessor(options.exporter));
    if (options.otlpEndpoint) {
      const url = `${options.otlpEndpoint.replace(/\/$/, '')}/v1/traces`;
      processors.push(OtlpJsonBatchProcessor.forUrl(url));
    }
    this.#provider = this.enabled
      ? new BasicTracerProvider({
          resource: resourceFromAttributes({
            'service.name': options.service,
            'service.instance.id': options.instance,
            ...(options.version ? { 'service.version': options.version } : {}),
          }),
          sampler: new ParentBasedSampler({ root: rootSampler(options.sampleRatio ?? 1) }),
          idGenerator: new PooledIdGenerator(),
          spanProcessors: processors,
        })
      : undefined;
    this.tracer = this.#provider?.getTracer('@ferry/service') ?? trace.getTracer('@ferry/service/disabled');
  }

  /**
   * Runs `work` in a new span under `parent`, ending it when `work` settles and recording a
   * thrown error. With tracing off, `work` runs in `parent` with no span.
   */
  async inSpan<T>(
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    parent: Context,
    work: (span: Span | undefined) => Promise<T>,
  ): Promise<T> {
    if (!this.enabled) return context.with(parent, () => work(undefined));
    const span = this.tracer.startSpan(name, { kind, attributes }, parent);
    try {
      return await context.with(trace.setSpan(parent, span), () => work(span));
    } catch (error) {
      recordError(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  /** Starts a span without making it active; the caller ends it. */
  startSpan(name: string, kind: SpanKind, attributes: Attributes, parent: Context): Span | undefined {
    return this.enabled ? this.tracer.startSpan(name, { kind, attributes }, parent) : undefined;
  }

  /** The active context with `span` as its current span. */
  withSpan(span: Span, parent: Context = context.active()): Context {
    return trace.setSpan(parent, span);
  }

  /** Exports spans still buffered. */
  async flush(): Promise<void> {
    await this.#provider?.forceFlush();
  }

  /** Flushes and stops exporting. */
  async shutdown(): Promise<void> {
    await this.#provider?.shutdown();
  }
}

/** Samples every new trace at ratio 1 without hashing its id; a share of them below that. */
function rootSampler(ratio: number) {
  return ratio >= 1 ? new AlwaysOnSampler() : new TraceIdRatioBasedSampler(ratio);
}

/** Marks a span failed with the error's message and records it as an exception event. */
export function recordError(span: Span | undefined, error: unknown): void {
  if (!span) return;
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
}
