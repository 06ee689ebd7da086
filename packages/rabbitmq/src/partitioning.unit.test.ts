import { describe, expect, it } from 'vitest';
import { partitionOf, partitionRoutingKey } from './partitioning.js';

describe('partitioning', () => {
  it('is FNV-1a (32-bit) of the UTF-8 key modulo the partition count', () => {
    // Published FNV-1a 32-bit test vectors: modulo 2^32 - 1 leaves the hash itself (all are smaller).
    const all = 0xffff_ffff;
    expect(partitionOf('', all)).toBe(0x811c9dc5);
    expect(partitionOf('a', all)).toBe(0xe40c292c);
    expect(partitionOf('foobar', all)).toBe(0xbf9cf968);
    expect(partitionOf('foobar', 8)).toBe(0xbf9cf968 % 8);
    // UTF-8 bytes, not UTF-16 code units: 'é' is C3 A9.
    const e = Math.imul(Math.imul(0x811c9dc5 ^ 0xc3, 0x01000193) ^ 0xa9, 0x01000193) >>> 0;
    expect(partitionOf('é', all)).toBe(e);
  });

  it('gives every key one partition below the count, spreading keys over all of them', () => {
    const counts = new Array<number>(8).fill(0);
    for (let k = 0; k < 4000; k++) {
      const p = partitionOf(`order-${k}`, 8);
      expect(p).toBe(partitionOf(`order-${k}`, 8));
      counts[p]!++;
    }
    for (const n of counts) expect(n).toBeGreaterThan(350);
    expect(partitionOf('k'.repeat(10_000), 1)).toBe(0);
  });

  it('routes by the partition number', () => {
    expect(partitionRoutingKey(7)).toBe('7');
  });
});
