const encoder = new TextEncoder();

/**
 * The partition of a key: FNV-1a (32-bit) of its UTF-8 bytes, modulo the channel's partition
 * count. Stable across processes and versions, so every publisher agrees.
 */
export function partitionOf(partitionKey: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(partitionKey)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}
