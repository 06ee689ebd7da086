import { describe, expect, it } from 'vitest';
import { fnv1a, partitionOf } from './partitioning.js';

describe('partitionOf', () => {
  it('is FNV-1a of the UTF-8 bytes (published test vectors), so all adapters and versions agree', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(fnv1a('foobar')).toBe(0xbf9cf968);
  });

  it('spreads keys over every partition and keeps each key on one', () => {
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[partitionOf(`order-${i}`, 16)]++;
    for (const n of counts) expect(n).toBeGreaterThan(800);
    expect(partitionOf('order-42', 16)).toBe(partitionOf('order-42', 16));
    expect(partitionOf('zürich', 7)).toBe(fnv1a('zürich') % 7);
  });
});
