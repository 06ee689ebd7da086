import { context, diag, TraceFlags } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode, getNumberFromEnv, suppressTracing } from '@opentelemetry/core';
import type { IOtlpExportDelegate } from '@opentelemetry/otlp-exporter-base';
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from '@opentelemetry/otlp-exporter-base/node-http';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  otlpJsonTraceSerializer,
  REQUEST_CLOSING,
  requestOpening,
  spanJson,
} from './otlp-json.serializer.js';

/** Options of {@link OtlpJsonBatchProcessor}; each defaults to its `OTEL_BSP_*` variable, then to OpenTelemetry's default. */
export interface OtlpJsonBatchOptions {
  /** Spans per export request (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, 512). */
  readonly maxExportBatchSize?: number | undefined;
  /** Spans held while an export is under way; beyond it new spans are dropped (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048). */
  readonly maxQueueSize?: number | undefined;
  /** Longest a span waits for a batch to fill (`OTEL_BSP_SCHEDULE_DELAY`, 5000 ms). */
  readonly scheduledDelayMillis?: number | undefined;
}

/**
 * Where a batch's bytes go: OpenTelemetry's OTLP/HTTP transport in production, a stand-in in tests.
 * The bytes are the sender's until it calls back; then the processor fills them again.
 */
export type BatchSender = Pick<IOtlpExportDelegate<Uint8Array>, 'export' | 'forceFlush' | 'shutdown'>;

/**
 * A span processor that writes each ended span as OTLP/HTTP JSON into the request bytes of the
 * batch being filled, and exports each batch through OpenTelemetry's OTLP/HTTP transport
 * (keep-alive agent, retries, timeout, `OTEL_EXPORTER_OTLP_*`). It behaves as the SDK's
 * `BatchSpanProcessor` does (batch size, schedule delay, queue limit, one export at a time,
 * unsampled spans skipped), but keeps no span: a span is serialised when it ends, so it dies
 * young instead of waiting in an array for its batch, and no batch of span objects is walked
 * again at export. Decision 0111.
 */
export class OtlpJsonBatchProcessor implements SpanProcessor {
  readonly #sender: BatchSender;
  readonly #maxBatch: number;
  readonly #maxQueue: number;
  readonly #delayMs: number;
  /** Batches filled and waiting for their export, oldest first. */
  readonly #sealed: Batch[] = [];
  #filling: Batch | undefined;
  /** Spans in sealed batches and the one filling. */
  #queued = 0;
  #dropped = 0;
  #exporting: Promise<void> | undefined;
  /** The buffer of the last batch exported, reused for the next: no fresh allocation per batch. */
  #spare: Buffer | undefined;
  #timer: NodeJS.Timeout | undefined;
  #shutDown = false;

  constructor(sender: BatchSender, options: OtlpJsonBatchOptions = {}) {
    this.#sender = sender;
    this.#maxBatch = options.maxExportBatchSize ?? getNumberFromEnv('OTEL_BSP_MAX_EXPORT_BATCH_SIZE') ?? 512;
    this.#maxQueue = Math.max(
      this.#maxBatch,
      options.maxQueueSize ?? getNumberFromEnv('OTEL_BSP_MAX_QUEUE_SIZE') ?? 2048,
    );
    this.#delayMs = options.scheduledDelayMillis ?? getNumberFromEnv('OTEL_BSP_SCHEDULE_DELAY') ?? 5000;
  }

  /** The processor for an OTLP/HTTP collector; `url` is the full traces endpoint, `<collector>/v1/traces`. */
  static forUrl(url: string, options?: OtlpJsonBatchOptions): OtlpJsonBatchProcessor {
    return new OtlpJsonBatchProcessor(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions({ url }, 'TRACES', 'v1/traces', { 'Content-Type': 'application/json' }),
        {
          serializeRequest: (bytes: Uint8Array) => bytes,
          deserializeResponse: otlpJsonTraceSerializer.deserializeResponse,
        },
      ),
      options,
    );
  }

  /** Spans dropped since start because the queue was full (an export too slow for the span rate). */
  get droppedSpans(): number {
    return this.#dropped;
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (this.#shutDown || (span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.#queued >= this.#maxQueue) {
      if (this.#dropped++ === 0) diag.warn('OtlpJsonBatchProcessor: queue full, dropping spans');
      return;
    }
    let batch = this.#filling;
    if (batch && (batch.resource !== span.resource || batch.scope !== span.instrumentationScope)) {
      this.#seal();
      batch = undefined;
    }
    if (!batch) {
      batch = new Batch(span, this.#spare);
      this.#spare = undefined;
      this.#filling = batch;
    }
    batch.add(spanJson(span));
    this.#queued++;
    if (batch.spans >= this.#maxBatch) {
      this.#seal();
      this.#exportNext();
    } else if (!this.#exporting) this.#schedule();
  }

  /** Exports every span ended so far and waits for the exports to settle. */
  async forceFlush(): Promise<void> {
    this.#seal();
    while (this.#exporting || this.#sealed.length > 0) {
      this.#exportNext();
      await this.#exporting;
    }
    await this.#sender.forceFlush();
  }

  async shutdown(): Promise<void> {
    if (this.#shutDown) return;
    await this.forceFlush();
    this.#shutDown = true;
    await this.#sender.shutdown();
  }

  #seal(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#filling) this.#sealed.push(this.#filling);
    this.#filling = undefined;
  }

  /** Starts the oldest sealed batch's export unless one is under way; the next follows when it settles. */
  #exportNext(): void {
    if (this.#exporting) return;
    const batch = this.#sealed.shift();
    if (!batch) return;
    this.#exporting = new Promise<void>((resolve) => {
      const settled = (result: ExportResult) => {
        this.#queued -= batch.spans;
        this.#spare = batch.release();
        if (result.code !== ExportResultCode.SUCCESS)
          diag.error(`OtlpJsonBatchProcessor: export of ${batch.spans} spans failed`, result.error);
        resolve();
      };
      // As the SDK's processors do: the export's own HTTP call is not traced.
      context.with(suppressTracing(context.active()), () => {
        try {
          this.#sender.export(batch.bytes(), settled);
        } catch (error) {
          settled({ code: ExportResultCode.FAILED, error: error as Error });
        }
      });
    }).then(() => {
      this.#exporting = undefined;
      if (this.#sealed.length > 0) this.#exportNext();
      else if (this.#filling) this.#schedule();
    });
  }

  /** Schedules the export of the batch being filled, after the schedule delay. */
  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#seal();
      this.#exportNext();
    }, this.#delayMs);
    this.#timer.unref();
  }
}

/**
 * The request bytes of one batch: the opening for its resource and scope, then each span's JSON
 * as it ends, in a buffer that grows by doubling (all ASCII, so one byte per character). The
 * buffer is handed back once the batch is exported, for the next batch to fill: batches of
 * hundreds of kilobytes allocated afresh each time grow V8's external memory and bring its
 * collections on sooner.
 */
class Batch {
  readonly resource: ReadableSpan['resource'];
  readonly scope: ReadableSpan['instrumentationScope'];
  spans = 0;
  #buffer: Buffer;
  #length: number;

  constructor(first: ReadableSpan, spare: Buffer | undefined) {
    this.resource = first.resource;
    this.scope = first.instrumentationScope;
    const opening = requestOpening(first.resource, first.instrumentationScope);
    const size = opening.length + REQUEST_CLOSING.length;
    this.#buffer = spare && spare.length >= size ? spare : Buffer.allocUnsafe(Math.max(64 * 1024, size * 2));
    this.#length = this.#buffer.write(opening, 0, 'latin1');
  }

  add(json: string): void {
    const needed = this.#length + json.length + 1 + REQUEST_CLOSING.length;
    if (needed > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.#buffer.length * 2));
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    if (this.spans++ > 0) this.#buffer[this.#length++] = 0x2c; // ','
    this.#length += this.#buffer.write(json, this.#length, 'latin1');
  }

  /** The finished request. */
  bytes(): Uint8Array {
    const end = this.#length + this.#buffer.write(REQUEST_CLOSING, this.#length, 'latin1');
    return this.#buffer.subarray(0, end);
  }

  /** The buffer, for another batch once this one's request is done with. */
  release(): Buffer {
    return this.#buffer;
  }
}
