import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { otlpJsonTraceSerializer } from './otlp-json.serializer.js';

const REMOTE_PARENT = {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
  traceState: new TraceState('vendor=abc'),
};

/** Spans made by the SDK itself: a root server span, a child with events, links and an error, a remote child. */
function makeSpans(): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'orders', 'service.instance.id': 'i-1' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('@ferry/service', '1.2.3');
  const root = tracer.startSpan(
    'GET /orders/:id',
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.route': '/orders/:id',
        'url.path': '/orders/"ü€😀"',
        'http.response.status_code': 200,
      },
    },
    ROOT_CONTEXT,
  );
  const child = tracer.startSpan(
    'select',
    {
      kind: SpanKind.CLIENT,
      attributes: { ratio: 0.25, cached: false, tags: ['a', 'b'], sizes: [1, 2] },
      links: [{ context: REMOTE_PARENT, attributes: { why: 'batch' } }],
    },
    trace.setSpan(ROOT_CONTEXT, root),
  );
  child.addEvent('retry', { attempt: 2 });
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'timed "out"' });
  child.end();
  root.end();
  const remoteChild = tracer.startSpan(
    'process Order',
    { kind: SpanKind.CONSUMER },
    trace.setSpanContext(context.active(), REMOTE_PARENT),
  );
  remoteChild.end();
  return exporter.getFinishedSpans();
}

const decode = (bytes: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(bytes));

/** Leaves out what protobuf's JSON mapping lets a writer leave out: empty lists and zero counts. */
function withoutDefaults(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutDefaults);
  if (typeof value !== 'object' || value === null) return value;
  const kept: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined || (Array.isArray(v) && v.length === 0) || (key.endsWith('Count') && v === 0))
      continue;
    kept[key] = withoutDefaults(v);
  }
  return kept;
}

const nanos = (time: readonly [number, number]) =>
  (BigInt(time[0]) * 1_000_000_000n + BigInt(time[1])).toString();

describe('otlpJsonTraceSerializer', () => {
  it('writes each span field as OTLP/HTTP JSON has it', () => {
    const spans = makeSpans();
    const request = decode(otlpJsonTraceSerializer.serializeRequest(spans));
    expect(request.resourceSpans).toHaveLength(1);
    const [resourceSpans] = request.resourceSpans;
    expect(resourceSpans.resource.attributes).toEqual([
      { key: 'service.name', value: { stringValue: 'orders' } },
      { key: 'service.instance.id', value: { stringValue: 'i-1' } },
    ]);
    expect(resourceSpans.scopeSpans).toHaveLength(1);
    expect(resourceSpans.scopeSpans[0].scope).toEqual({ name: '@ferry/service', version: '1.2.3' });
    const written = resourceSpans.scopeSpans[0].spans;
    expect(written).toHaveLength(spans.length);
    spans.forEach((span, i) => {
      const out = written[i];
      expect(out.traceId).toBe(span.spanContext().traceId);
      expect(out.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(out.spanId).toBe(span.spanContext().spanId);
      expect(out.spanId).toMatch(/^[0-9a-f]{16}$/);
      expect(out.parentSpanId).toBe(span.parentSpanContext?.spanId);
      expect(out.name).toBe(span.name);
      expect(out.kind).toBe(span.kind + 1);
      expect(out.startTimeUnixNano).toBe(nanos(span.startTime));
      expect(out.endTimeUnixNano).toBe(nanos(span.endTime));
      expect(out.status.code).toBe(span.status.code);
    });
    const [child, root, remote] = written;
    expect(root.attributes).toEqual([
      { key: 'http.route', value: { stringValue: '/orders/:id' } },
      { key: 'url.path', value: { stringValue: '/orders/"ü€😀"' } },
      { key: 'http.response.status_code', value: { intValue: 200 } },
    ]);
    expect(root.flags).toBe(0x101);
    expect(child.attributes).toEqual([
      { key: 'ratio', value: { doubleValue: 0.25 } },
      { key: 'cached', value: { boolValue: false } },
      { key: 'tags', value: { arrayValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] } } },
      { key: 'sizes', value: { arrayValue: { values: [{ intValue: 1 }, { intValue: 2 }] } } },
    ]);
    expect(child.status).toEqual({ code: SpanStatusCode.ERROR, message: 'timed "out"' });
    expect(child.events).toEqual([
      {
        name: 'retry',
        timeUnixNano: nanos(spans[0]!.events[0]!.time),
        attributes: [{ key: 'attempt', value: { intValue: 2 } }],
      },
    ]);
    expect(child.links).toEqual([
      {
        traceId: REMOTE_PARENT.traceId,
        spanId: REMOTE_PARENT.spanId,
        traceState: 'vendor=abc',
        attributes: [{ key: 'why', value: { stringValue: 'batch' } }],
        flags: 0x301,
      },
    ]);
    expect(remote).toMatchObject({
      traceId: REMOTE_PARENT.traceId,
      parentSpanId: REMOTE_PARENT.spanId,
      traceState: 'vendor=abc',
      flags: 0x301,
    });
  });

  it("says what OpenTelemetry's own JSON serializer says, less the defaults it spells out", () => {
    const spans = makeSpans();
    const ours = decode(otlpJsonTraceSerializer.serializeRequest(spans));
    const theirs = decode(JsonTraceSerializer.serializeRequest(spans));
    expect(withoutDefaults(ours)).toEqual(withoutDefaults(theirs));
  });

  it('spells doubles that are not finite as protobuf JSON does', () => {
    const [span] = makeSpans();
    const odd: ReadableSpan = Object.create(span!, {
      attributes: { value: { nan: Number.NaN, inf: Number.POSITIVE_INFINITY } },
    });
    const request = decode(otlpJsonTraceSerializer.serializeRequest([odd]));
    expect(request.resourceSpans[0].scopeSpans[0].spans[0].attributes).toEqual([
      { key: 'nan', value: { doubleValue: 'NaN' } },
      { key: 'inf', value: { doubleValue: 'Infinity' } },
    ]);
  });

  it('writes ASCII only, escaping other characters, so the bytes are the text', () => {
    const bytes = otlpJsonTraceSerializer.serializeRequest(makeSpans());
    expect(bytes.every((b) => b < 0x80)).toBe(true);
    expect(Buffer.from(bytes).toString('latin1')).toContain('\\u00fc\\u20ac\\ud83d\\ude00');
  });

  it('reads an empty or a partial-success response', () => {
    expect(otlpJsonTraceSerializer.deserializeResponse(new Uint8Array())).toEqual({});
    const partial = new TextEncoder().encode('{"partialSuccess":{"rejectedSpans":2}}');
    expect(otlpJsonTraceSerializer.deserializeResponse(partial)).toEqual({
      partialSuccess: { rejectedSpans: 2 },
    });
  });
});
