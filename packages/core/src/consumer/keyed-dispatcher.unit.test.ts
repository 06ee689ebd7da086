import { describe, expect, it } from 'vitest';
import { KeyedDispatcher } from './keyed-dispatcher.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

describe('KeyedDispatcher', () => {
  it('runs one item per key at a time, in order, and caps the keys running at once', async () => {
    const order: string[] = [];
    let running = 0;
    let peak = 0;
    const dispatcher = new KeyedDispatcher<number>(3, async (item, key) => {
      running++;
      peak = Math.max(peak, running);
      await tick();
      order.push(`${key}:${item}`);
      running--;
    });
    for (let i = 0; i < 5; i++) for (const key of ['a', 'b', 'c', 'd', 'e']) dispatcher.push(key, i);
    await dispatcher.idle();
    expect(peak).toBe(3);
    for (const key of ['a', 'b', 'c', 'd', 'e']) {
      expect(order.filter((o) => o.startsWith(key))).toEqual([0, 1, 2, 3, 4].map((i) => `${key}:${i}`));
    }
  });

  it('keeps going when an item throws', async () => {
    const done: number[] = [];
    const dispatcher = new KeyedDispatcher<number>(1, async (item) => {
      if (item === 1) throw new Error('boom');
      done.push(item);
    });
    for (const i of [1, 2, 3]) dispatcher.push('k', i);
    await dispatcher.idle();
    expect(done).toEqual([2, 3]);
  });

  it('refuses a concurrency below one', () => {
    expect(() => new KeyedDispatcher(0, async () => {})).toThrow(/positive integer/);
  });
});
