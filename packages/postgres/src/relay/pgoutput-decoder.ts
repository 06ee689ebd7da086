import type { Lsn } from './lsn.js';
import { pgTimestampToMs } from './replication-protocol.js';

/** A column of a relation as pgoutput describes it. */
export interface PgOutputColumn {
  readonly name: string;
  readonly typeOid: number;
}

/**
 * The pgoutput messages Ferry acts on (protocol version 1, text tuples). Everything else
 * (origin, type, update, delete, truncate, logical messages) decodes to `other`: an
 * insert-only publication on the outbox does not send them, and none changes the outbox stream.
 */
export type PgOutputMessage =
  | { readonly tag: 'begin'; readonly finalLsn: Lsn; readonly commitTimeMs: number; readonly xid: number }
  | { readonly tag: 'commit'; readonly commitLsn: Lsn; readonly endLsn: Lsn; readonly commitTimeMs: number }
  | {
      readonly tag: 'relation';
      readonly relationId: number;
      readonly schema: string;
      readonly table: string;
      readonly columns: readonly PgOutputColumn[];
    }
  | { readonly tag: 'insert'; readonly relationId: number; readonly values: readonly (string | null)[] }
  | { readonly tag: 'other'; readonly code: string };

/** Reads the big-endian integers and NUL-terminated strings of the pgoutput format. */
class Reader {
  #offset = 0;
  constructor(private readonly buffer: Buffer) {}

  byte(): number {
    return this.buffer.readUInt8(this.#offset++);
  }
  int16(): number {
    const value = this.buffer.readInt16BE(this.#offset);
    this.#offset += 2;
    return value;
  }
  int32(): number {
    const value = this.buffer.readInt32BE(this.#offset);
    this.#offset += 4;
    return value;
  }
  uint32(): number {
    const value = this.buffer.readUInt32BE(this.#offset);
    this.#offset += 4;
    return value;
  }
  uint64(): bigint {
    const value = this.buffer.readBigUInt64BE(this.#offset);
    this.#offset += 8;
    return value;
  }
  int64(): bigint {
    const value = this.buffer.readBigInt64BE(this.#offset);
    this.#offset += 8;
    return value;
  }
  string(): string {
    const end = this.buffer.indexOf(0, this.#offset);
    if (end < 0) throw new Error('pgoutput: unterminated string');
    const value = this.buffer.toString('utf8', this.#offset, end);
    this.#offset = end + 1;
    return value;
  }
  text(length: number): string {
    const value = this.buffer.toString('utf8', this.#offset, this.#offset + length);
    this.#offset += length;
    return value;
  }
}

function tuple(reader: Reader): (string | null)[] {
  const count = reader.int16();
  const values: (string | null)[] = [];
  for (let i = 0; i < count; i++) {
    const kind = String.fromCharCode(reader.byte());
    if (kind === 'n') values.push(null);
    else if (kind === 't') values.push(reader.text(reader.int32()));
    // 'u' (unchanged TOAST) occurs only in updates, 'b' only with the binary option; Ferry asks for neither.
    else throw new Error(`pgoutput: unexpected tuple value kind "${kind}"`);
  }
  return values;
}

/** Decodes one pgoutput message (the data of an XLogData frame). */
export function decodePgOutput(data: Buffer): PgOutputMessage {
  const reader = new Reader(data);
  const code = String.fromCharCode(reader.byte());
  switch (code) {
    case 'B': {
      const finalLsn = reader.uint64();
      const commitTimeMs = pgTimestampToMs(reader.int64());
      return { tag: 'begin', finalLsn, commitTimeMs, xid: reader.uint32() };
    }
    case 'C': {
      reader.byte(); // flags, unused
      const commitLsn = reader.uint64();
      const endLsn = reader.uint64();
      return { tag: 'commit', commitLsn, endLsn, commitTimeMs: pgTimestampToMs(reader.int64()) };
    }
    case 'R': {
      const relationId = reader.uint32();
      const schema = reader.string();
      const table = reader.string();
      reader.byte(); // replica identity setting
      const count = reader.int16();
      const columns: PgOutputColumn[] = [];
      for (let i = 0; i < count; i++) {
        reader.byte(); // flags (part of the key)
        const name = reader.string();
        const typeOid = reader.uint32();
        reader.int32(); // type modifier
        columns.push({ name, typeOid });
      }
      return { tag: 'relation', relationId, schema, table, columns };
    }
    case 'I': {
      const relationId = reader.uint32();
      const marker = String.fromCharCode(reader.byte());
      if (marker !== 'N') throw new Error(`pgoutput: insert without a new tuple (got "${marker}")`);
      return { tag: 'insert', relationId, values: tuple(reader) };
    }
    default:
      return { tag: 'other', code };
  }
}
