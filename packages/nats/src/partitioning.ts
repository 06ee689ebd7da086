/**
 * Which partition a message goes to, and which member owns a partition. Both are pure functions
 * of their inputs, so every publisher and every member computes the same answer.
 */

import { fnv1a } from '@ferry/core';

export { fnv1a, partitionOf } from '@ferry/core';

/**
 * Rendezvous (highest random weight) assignment: the member whose hash with the partition is
 * highest owns it. When a member joins or leaves, only the partitions it gains or loses move.
 */
export function ownerOf(partition: number, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const member of members) {
    const weight = mix(fnv1a(`${member}/${partition}`));
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && member < best)) {
      best = member;
      bestWeight = weight;
    }
  }
  return best;
}

/** MurmurHash3's 32-bit finaliser: spreads FNV's weak low-order differences over all bits. */
function mix(hash: number): number {
  let h = hash;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The partitions out of `partitions` that rendezvous hashing gives to `member`. */
export function assignedTo(member: string, members: readonly string[], partitions: number): number[] {
  const mine: number[] = [];
  for (let p = 0; p < partitions; p++) if (ownerOf(p, members) === member) mine.push(p);
  return mine;
}
