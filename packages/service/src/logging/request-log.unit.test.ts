import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createRequestLogger } from './logger.js';
import { type RequestLine, RequestLog } from './request-log.js';

/** A destination that keeps each write as it came. */
function capture() {
  const writes: string[] = [];
  return { writes, write: (line: string) => void writes.push(line) };
}

/** The line pino itself writes for the same request. */
function pinoLine(line: RequestLine): string {
  const destination = capture();
  createRequestLogger({ service: 'order', instance: 'order-1', destination }).info(
    {
      method: line.method,
      url: line.url,
      route: line.route,
      status: line.status,
      duration_ms: line.durationMs,
      correlation_id: line.correlationId,
      trace_id: line.traceId,
      span_id: line.spanId,
      principal: line.principal,
    },
    'request',
  );
  return destination.writes[0]!;
}

function ours(line: RequestLine, level = 'info'): string[] {
  const destination = capture();
  const logger = createRequestLogger({ service: 'order', instance: 'order-1', level, destination });
  new RequestLog(logger).write(line);
  return destination.writes;
}

/** The line without its time, which may differ by a millisecond between the two loggers. */
const timeless = (text: string) => text.replace(/"time":"[^"]*"/, '"time":""');

const traced: RequestLine = {
  method: 'GET',
  url: '/orders/42?page=2',
  route: '/orders/:id',
  status: 200,
  durationMs: 1.234,
  correlationId: '3f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f',
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  principal: 'consumer-7',
};

describe('RequestLog', () => {
  it('writes the line pino writes for the same fields, byte for byte but the time', () => {
    const [line] = ours(traced);
    expect(timeless(line!)).toBe(timeless(pinoLine(traced)));
    expect(line!.endsWith('}\n')).toBe(true);
  });

  it('leaves out the trace ids and the principal when there are none, as pino does', () => {
    const bare: RequestLine = { ...traced, traceId: undefined, spanId: undefined, principal: undefined };
    const [line] = ours(bare);
    expect(timeless(line!)).toBe(timeless(pinoLine(bare)));
    expect(JSON.parse(line!)).not.toHaveProperty('trace_id');
  });

  it('escapes what a caller controls: quotes, control and non-ASCII characters in the URL and principal', () => {
    const odd: RequestLine = { ...traced, url: '/search?q="a\\b"\u0001ü', principal: 'ñ"x' };
    const [line] = ours(odd);
    expect(JSON.parse(line!)).toMatchObject({ url: odd.url, principal: odd.principal });
    expect(JSON.parse(timeless(line!))).toEqual(JSON.parse(timeless(pinoLine(odd))));
  });

  it('hands the line to pino when the destination wants its per-line metadata (a multistream)', () => {
    const destination = capture();
    const logger = createRequestLogger({
      service: 'order',
      instance: 'order-1',
      destination: pino.multistream([{ stream: destination }]),
    });
    new RequestLog(logger).write(traced);
    expect(destination.writes).toHaveLength(1);
    expect(timeless(destination.writes[0]!)).toBe(timeless(pinoLine(traced)));
  });

  it('follows the logger level, a live change included', () => {
    expect(ours(traced, 'warn')).toEqual([]);
    const destination = capture();
    const logger = createRequestLogger({ service: 'order', instance: 'order-1', level: 'warn', destination });
    const log = new RequestLog(logger);
    log.write(traced);
    logger.level = 'info';
    log.write(traced);
    expect(destination.writes).toHaveLength(1);
  });
});
