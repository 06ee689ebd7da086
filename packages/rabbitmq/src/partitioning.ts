const encoder = new TextEncoder();

/**
 * The partition of a key: FNV-1a (32-bit) of its UTF-8 bytes, modulo the channel's partition
 * count. A pure function of the key and the count, computed by the publisher, so it is the same
 * in every process, in every version and across broker restarts. It is the function the
 * PostgreSQL and NATS brokers partition with.
 */
export function partitionOf(partitionKey: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(partitionKey)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}

/** The routing key of partition `index`: its number, the binding key of every group's queue `index`. */
export function partitionRoutingKey(index: number): string {
  return String(index);
}
