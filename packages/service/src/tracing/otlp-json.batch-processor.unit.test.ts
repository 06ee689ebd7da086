import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, ROOT_CONTEXT, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode, isTracingSuppressed } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { ensureContextManager } from './context-manager.js';
import { type BatchSender, OtlpJsonBatchProcessor } from './otlp-json.batch-processor.js';
import { otlpJsonTraceSerializer } from './otlp-json.serializer.js';

/** A sender that keeps each request's bytes and answers when told (or at once). */
class RecordingSender implements BatchSender {
  readonly requests: Uint8Array[] = [];
  readonly #pending: ((result: ExportResult) => void)[] = [];
  shutDown = false;
  constructor(private readonly answerAtOnce = true) {}

  export(bytes: Uint8Array, done: (result: ExportResult) => void): void {
    // The processor fills the same buffer again once `done` is called: keep a copy.
    this.requests.push(Buffer.from(bytes));
    if (this.answerAtOnce) done({ code: ExportResultCode.SUCCESS });
    else this.#pending.push(done);
  }
  answerAll(): void {
    for (const done of this.#pending.splice(0)) done({ code: ExportResultCode.SUCCESS });
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {
    this.shutDown = true;
  }
  spanCounts(): number[] {
    return this.requests.map((bytes) => decode(bytes).resourceSpans[0].scopeSpans[0].spans.length);
  }
}

const decode = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));

/** A provider whose spans go to `processor` and to an in-memory exporter (to compare with). */
function tracerWith(processor: SpanProcessor, ratio = 1) {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'orders' }),
    spanProcessors: [processor, new SimpleSpanProcessor(memory)],
    sampler: {
      shouldSample: (_c, traceId) => ({
        decision: Number.parseInt(traceId.slice(-2), 16) / 256 < ratio ? 2 : 1,
      }),
    },
  });
  return { tracer: provider.getTracer('@ferry/service'), memory };
}

function endSpans(tracer: ReturnType<typeof tracerWith>['tracer'], count: number): void {
  for (let i = 0; i < count; i++) {
    const span = tracer.startSpan(
      `GET /orders/${i}`,
      { kind: SpanKind.SERVER, attributes: { 'url.path': `/orders/"${i}"ü` } },
      ROOT_CONTEXT,
    );
    span.setAttribute('http.response.status_code', 200);
    span.end();
  }
}

describe('OtlpJsonBatchProcessor', () => {
  it('sends full batches, each the request the OTLP JSON serializer writes for the same spans', async () => {
    const sender = new RecordingSender();
    const processor = new OtlpJsonBatchProcessor(sender, {
      maxExportBatchSize: 4,
      scheduledDelayMillis: 60_000,
    });
    const { tracer, memory } = tracerWith(processor);
    endSpans(tracer, 10);
    await new Promise((resolve) => setImmediate(resolve));
    expect(sender.spanCounts()).toEqual([4, 4]);
    await processor.forceFlush();
    expect(sender.spanCounts()).toEqual([4, 4, 2]);
    const spans = memory.getFinishedSpans();
    const expected = [spans.slice(0, 4), spans.slice(4, 8), spans.slice(8)].map((batch) =>
      decode(otlpJsonTraceSerializer.serializeRequest(batch)),
    );
    expect(sender.requests.map(decode)).toEqual(expected);
  });

  it('sends a batch that is not full once the schedule delay has passed', async () => {
    const sender = new RecordingSender();
    const processor = new OtlpJsonBatchProcessor(sender, {
      maxExportBatchSize: 512,
      scheduledDelayMillis: 20,
    });
    endSpans(tracerWith(processor).tracer, 3);
    expect(sender.requests).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(sender.spanCounts()).toEqual([3]);
  });

  it('skips spans that are not sampled', async () => {
    const sender = new RecordingSender();
    const processor = new OtlpJsonBatchProcessor(sender, { maxExportBatchSize: 512 });
    const { tracer, memory } = tracerWith(processor, 0.5);
    endSpans(tracer, 200);
    await processor.forceFlush();
    const sampled = memory
      .getFinishedSpans()
      .filter((s: ReadableSpan) => s.spanContext().traceFlags & TraceFlags.SAMPLED);
    expect(sampled.length).toBeGreaterThan(0);
    expect(sampled.length).toBeLessThan(200);
    expect(sender.spanCounts()).toEqual([sampled.length]);
  });

  it('sends one batch at a time and drops spans past the queue limit while an export hangs, counting them', async () => {
    const sender = new RecordingSender(false);
    const processor = new OtlpJsonBatchProcessor(sender, { maxExportBatchSize: 4, maxQueueSize: 8 });
    const { tracer } = tracerWith(processor);
    endSpans(tracer, 12);
    expect(sender.spanCounts()).toEqual([4]);
    expect(processor.droppedSpans).toBe(4);
    sender.answerAll();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sender.spanCounts()).toEqual([4, 4]);
    sender.answerAll();
    await new Promise((resolve) => setImmediate(resolve));
    endSpans(tracer, 1);
    const flushed = processor.forceFlush();
    await new Promise((resolve) => setImmediate(resolve));
    sender.answerAll();
    await flushed;
    expect(sender.spanCounts()).toEqual([4, 4, 1]);
  });

  it('leaves the bytes of a batch whose export is not answered alone, and reuses them once it is', async () => {
    const held: { bytes: Uint8Array; done: (result: ExportResult) => void }[] = [];
    const sender: BatchSender = {
      export: (bytes, done) => void held.push({ bytes, done }),
      forceFlush: async () => {},
      shutdown: async () => {},
    };
    const processor = new OtlpJsonBatchProcessor(sender, { maxExportBatchSize: 2 });
    const { tracer } = tracerWith(processor);
    const names = (bytes: Uint8Array) =>
      decode(bytes).resourceSpans[0].scopeSpans[0].spans.map((s: { name: string }) => s.name);
    endSpans(tracer, 4);
    held[0]!.done({ code: ExportResultCode.SUCCESS });
    await new Promise((resolve) => setImmediate(resolve));
    expect(held).toHaveLength(2);
    endSpans(tracer, 2); // fills the first batch's buffer again
    expect(names(held[1]!.bytes)).toEqual(['GET /orders/2', 'GET /orders/3']);
    expect(held[1]!.bytes.buffer).not.toBe(held[0]!.bytes.buffer);
    held[1]!.done({ code: ExportResultCode.SUCCESS });
    await new Promise((resolve) => setImmediate(resolve));
    expect(names(held[2]!.bytes)).toEqual(['GET /orders/0', 'GET /orders/1']);
    expect(held[2]!.bytes.buffer).toBe(held[0]!.bytes.buffer);
  });

  it('goes on after a sender that throws, and sends its export without tracing it', async () => {
    ensureContextManager();
    const sent: number[] = [];
    let suppressed = true;
    let calls = 0;
    const sender: BatchSender = {
      export: (bytes, done) => {
        suppressed &&= isTracingSuppressed(context.active());
        if (calls++ === 0) throw new Error('transport broke');
        sent.push(decode(bytes).resourceSpans[0].scopeSpans[0].spans.length);
        done({ code: ExportResultCode.SUCCESS });
      },
      forceFlush: async () => {},
      shutdown: async () => {},
    };
    const processor = new OtlpJsonBatchProcessor(sender, { maxExportBatchSize: 2 });
    endSpans(tracerWith(processor).tracer, 5);
    await processor.forceFlush();
    expect(sent).toEqual([2, 1]);
    expect(suppressed).toBe(true);
  });

  it('exports what is left on shutdown, then nothing more', async () => {
    const sender = new RecordingSender();
    const processor = new OtlpJsonBatchProcessor(sender, { maxExportBatchSize: 512 });
    const { tracer } = tracerWith(processor);
    endSpans(tracer, 2);
    await processor.shutdown();
    expect(sender.spanCounts()).toEqual([2]);
    expect(sender.shutDown).toBe(true);
    endSpans(tracer, 2);
    await processor.forceFlush();
    expect(sender.spanCounts()).toEqual([2]);
  });

  it('posts OTLP/HTTP JSON to a collector at <endpoint>/v1/traces', async () => {
    const received: { url: string | undefined; type: string | undefined; body: unknown }[] = [];
    const collector = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        received.push({ url: req.url, type: req.headers['content-type'], body: JSON.parse(body) });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
      const processor = OtlpJsonBatchProcessor.forUrl(url);
      const { tracer } = tracerWith(processor);
      const parent = tracer.startSpan('parent', {}, ROOT_CONTEXT);
      tracer.startSpan('child', {}, trace.setSpan(ROOT_CONTEXT, parent)).end();
      parent.end();
      await processor.shutdown();
      expect(received).toHaveLength(1);
      expect(received[0]!.url).toBe('/v1/traces');
      expect(received[0]!.type).toBe('application/json');
      const spans = (
        received[0]!.body as {
          resourceSpans: {
            scopeSpans: { spans: { name: string; parentSpanId?: string; spanId: string }[] }[];
          }[];
        }
      ).resourceSpans[0]!.scopeSpans[0]!.spans;
      expect(spans.map((s) => s.name)).toEqual(['child', 'parent']);
      expect(spans[0]!.parentSpanId).toBe(spans[1]!.spanId);
    } finally {
      collector.close();
    }
  });
});
