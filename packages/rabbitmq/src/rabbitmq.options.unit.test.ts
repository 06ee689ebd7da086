import { describe, expect, it } from 'vitest';
import { resolveOptions } from './rabbitmq.options.js';

describe('options', () => {
  it('adds a heartbeat to the URL unless one is given, and fills in defaults', () => {
    const options = resolveOptions({ url: 'amqp://guest:guest@127.0.0.1:5672' });
    expect(new URL(options.url).searchParams.get('heartbeat')).toBe('10');
    expect(options).toMatchObject({ namespace: 'ferry', partitions: 8, prefetch: 32, deliveryLimit: 20 });
    expect(resolveOptions({ url: 'amqp://h/vhost?heartbeat=3' }).url).toBe('amqp://h/vhost?heartbeat=3');
  });

  it('names the option that cannot work', () => {
    expect(() => resolveOptions({ url: 'http://h' })).toThrow(/amqp:\/\//);
    expect(() => resolveOptions({ url: 'amqp://h', partitions: 0 })).toThrow(/partitions/);
    expect(() => resolveOptions({ url: 'amqp://h', prefetch: 1.5 })).toThrow(/prefetch/);
  });
});
