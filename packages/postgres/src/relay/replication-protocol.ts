import type { Lsn } from './lsn.js';

/**
 * The frames of PostgreSQL's streaming replication sub-protocol carried in CopyData messages
 * (protocol documentation, "Streaming Replication Protocol").
 */
export type ReplicationFrame =
  /** XLogData: output of the decoding plugin starting at WAL position `start`. */
  | { readonly kind: 'xlog'; readonly start: Lsn; readonly data: Buffer }
  /** Primary keepalive: everything up to `walEnd` has been sent; reply at once if asked. */
  | { readonly kind: 'keepalive'; readonly walEnd: Lsn; readonly replyRequested: boolean };

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_OFFSET_US = 946_684_800_000_000n;

/** Reads one CopyData payload from the server; `undefined` for frames Ferry does not use. */
export function parseReplicationFrame(chunk: Buffer): ReplicationFrame | undefined {
  switch (chunk[0]) {
    case 0x77: // 'w': start(8) walEnd(8) sendTime(8) data
      return { kind: 'xlog', start: chunk.readBigUInt64BE(1), data: chunk.subarray(25) };
    case 0x6b: // 'k': walEnd(8) sendTime(8) replyRequested(1)
      return { kind: 'keepalive', walEnd: chunk.readBigUInt64BE(1), replyRequested: chunk[17] === 1 };
    default:
      return undefined;
  }
}

/**
 * A standby status update ('r'): the server takes `flushed` as the slot's confirmed position,
 * so it must never pass what the broker has acknowledged. `written` only feeds statistics.
 */
export function standbyStatusUpdate(written: Lsn, flushed: Lsn, nowMs = Date.now()): Buffer {
  const frame = Buffer.alloc(34);
  frame[0] = 0x72;
  frame.writeBigUInt64BE(written, 1);
  frame.writeBigUInt64BE(flushed, 9);
  frame.writeBigUInt64BE(flushed, 17);
  frame.writeBigInt64BE(BigInt(Math.floor(nowMs)) * 1000n - PG_EPOCH_OFFSET_US, 25);
  frame[33] = 0;
  return frame;
}

/** Converts a PostgreSQL timestamp (microseconds since 2000-01-01) to Unix milliseconds. */
export function pgTimestampToMs(microseconds: bigint): number {
  return Number((microseconds + PG_EPOCH_OFFSET_US) / 1000n);
}
