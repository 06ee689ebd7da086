import { describe, expect, it } from 'vitest';
import { assignedTo, fnv1a, ownerOf, partitionOf } from './partitioning.js';

describe('partitioning', () => {
  it('hashes keys with FNV-1a, the same in every process', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(partitionOf('order-42', 16)).toBe(partitionOf('order-42', 16));
  });

  it('spreads keys over the partitions', () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[partitionOf(`order-${i}`, 16)]!++;
    for (const count of counts) expect(count).toBeGreaterThan(700);
  });

  it('gives every partition to exactly one member, evenly enough', () => {
    const members = ['m1', 'm2', 'm3'];
    const shares = members.map((m) => assignedTo(m, members, 64));
    expect(shares.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 64 }, (_, i) => i));
    for (const share of shares) expect(share.length).toBeGreaterThan(10);
  });

  it('moves only the leaving member’s partitions', () => {
    const before = Array.from({ length: 64 }, (_, p) => ownerOf(p, ['m1', 'm2', 'm3']));
    const after = Array.from({ length: 64 }, (_, p) => ownerOf(p, ['m1', 'm3']));
    before.forEach((owner, p) => {
      if (owner !== 'm2') expect(after[p]).toBe(owner);
    });
    expect(ownerOf(0, [])).toBeUndefined();
  });
});
