import { createContextKey, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { LINKED_ROOT_CONTEXT } from './linked-context.js';
import { PooledIdGenerator } from './trace-ids.js';

const A = createContextKey('a');
const B = createContextKey('b');

describe('LinkedContext behaves as the OpenTelemetry API context', () => {
  it.each([
    ['API context', ROOT_CONTEXT],
    ['linked context', LINKED_ROOT_CONTEXT],
  ])('%s: set, shadow and delete leave the parents unchanged', (_name, root) => {
    const one = root.setValue(A, 1);
    const two = one.setValue(B, 2).setValue(A, 3);
    const gone = two.deleteValue(A);
    expect([root.getValue(A), one.getValue(A), two.getValue(A), two.getValue(B)]).toEqual([
      undefined,
      1,
      3,
      2,
    ]);
    expect([gone.getValue(A), gone.getValue(B), one.getValue(B)]).toEqual([undefined, 2, undefined]);
  });

  it('carries a span through the trace API', () => {
    const span = trace.wrapSpanContext({ traceId: '1'.repeat(32), spanId: '2'.repeat(16), traceFlags: 1 });
    expect(trace.getSpan(trace.setSpan(LINKED_ROOT_CONTEXT, span))).toBe(span);
    expect(trace.getSpan(LINKED_ROOT_CONTEXT)).toBeUndefined();
  });
});

describe('PooledIdGenerator', () => {
  it('makes distinct lowercase hex ids of W3C length, across pool refills', () => {
    const ids = new PooledIdGenerator();
    const spans = Array.from({ length: 1000 }, () => ids.generateSpanId());
    const traces = Array.from({ length: 1000 }, () => ids.generateTraceId());
    expect(spans.every((id) => /^[0-9a-f]{16}$/.test(id) && id !== '0'.repeat(16))).toBe(true);
    expect(traces.every((id) => /^[0-9a-f]{32}$/.test(id) && id !== '0'.repeat(32))).toBe(true);
    expect(new Set(spans).size).toBe(1000);
    expect(new Set(traces).size).toBe(1000);
  });
});
