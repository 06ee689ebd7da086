const encoder = new TextEncoder();

/** FNV-1a, 32 bits, over the UTF-8 bytes of `text`. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * The partition of a partition key: FNV-1a of its UTF-8 bytes modulo the channel's partition
 * count. Every broker adapter uses this one function, so every publisher, in every process and
 * version, puts a key on the same partition, and a broker restart cannot move it.
 */
export function partitionOf(partitionKey: string, partitions: number): number {
  return fnv1a(partitionKey) % partitions;
}
