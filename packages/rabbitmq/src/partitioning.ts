/**
 * The partition of a key is core's `partitionOf` (FNV-1a of the key's UTF-8 bytes modulo the
 * partition count), computed by the publisher: the same in every process, in every version and
 * across broker restarts, and the function every Ferry broker partitions with.
 */
export { partitionOf } from '@ferry/core';

/** The routing key of partition `index`: its number, the binding key of every group's queue `index`. */
export function partitionRoutingKey(index: number): string {
  return String(index);
}
