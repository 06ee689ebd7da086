import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from './lsn.js';
import { OutboxTransactionAssembler } from './outbox-transactions.js';
import { decodePgOutput } from './pgoutput-decoder.js';
import { parseReplicationFrame, standbyStatusUpdate } from './replication-protocol.js';

/** Builds pgoutput messages byte by byte, as the server lays them out. */
class Writer {
  readonly #parts: Buffer[] = [];
  byte(value: number | string) {
    this.#parts.push(Buffer.from([typeof value === 'string' ? value.charCodeAt(0) : value]));
    return this;
  }
  int16(value: number) {
    const b = Buffer.alloc(2);
    b.writeInt16BE(value);
    this.#parts.push(b);
    return this;
  }
  int32(value: number) {
    const b = Buffer.alloc(4);
    b.writeInt32BE(value);
    this.#parts.push(b);
    return this;
  }
  int64(value: bigint) {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(value);
    this.#parts.push(b);
    return this;
  }
  string(value: string) {
    this.#parts.push(Buffer.from(`${value}\0`, 'utf8'));
    return this;
  }
  text(value: string | null) {
    if (value === null) return this.byte('n');
    const bytes = Buffer.from(value, 'utf8');
    this.byte('t').int32(bytes.length);
    this.#parts.push(bytes);
    return this;
  }
  done() {
    return Buffer.concat(this.#parts);
  }
}

const OUTBOX_COLUMNS = [
  'position',
  'message_id',
  'channel',
  'partition_key',
  'headers',
  'body',
  'created_at',
  'published_at',
];
// 2000-01-01T00:00:01Z in PostgreSQL's microseconds since its epoch.
const ONE_SECOND_PAST_PG_EPOCH = 1_000_000n;

const relation = (id: number, schema: string, table: string, columns: string[]) => {
  const w = new Writer().byte('R').int32(id).string(schema).string(table).byte('d').int16(columns.length);
  for (const name of columns) w.byte(0).string(name).int32(25).int32(-1);
  return w.done();
};
const insert = (id: number, values: (string | null)[]) => {
  const w = new Writer().byte('I').int32(id).byte('N').int16(values.length);
  for (const v of values) w.text(v);
  return w.done();
};
const begin = (xid: number) =>
  new Writer().byte('B').int64(0x1_0000_0100n).int64(ONE_SECOND_PAST_PG_EPOCH).int32(xid).done();
const commit = (end: bigint) =>
  new Writer()
    .byte('C')
    .byte(0)
    .int64(end - 8n)
    .int64(end)
    .int64(ONE_SECOND_PAST_PG_EPOCH)
    .done();
const row = (id: string, channel: string, n: number) => [
  '1',
  id,
  channel,
  'key-1',
  '{"type": "Noted", "kind": "event"}',
  JSON.stringify({ n }),
  '2026-01-01 00:00:00+00',
  null,
];

describe('pgoutput decoding', () => {
  it('decodes begin, relation, insert and commit', () => {
    expect(decodePgOutput(begin(42))).toEqual({
      tag: 'begin',
      finalLsn: 0x1_0000_0100n,
      commitTimeMs: 946_684_801_000,
      xid: 42,
    });
    const decoded = decodePgOutput(relation(7, 'ferry', 'outbox', ['a', 'b']));
    expect(decoded).toMatchObject({ tag: 'relation', relationId: 7, schema: 'ferry', table: 'outbox' });
    expect(decodePgOutput(insert(7, ['x', null, 'ü €']))).toEqual({
      tag: 'insert',
      relationId: 7,
      values: ['x', null, 'ü €'],
    });
    expect(decodePgOutput(commit(0x2_0000_0010n))).toMatchObject({ tag: 'commit', endLsn: 0x2_0000_0010n });
    expect(decodePgOutput(Buffer.from('O'))).toEqual({ tag: 'other', code: 'O' });
  });

  it('assembles the outbox rows of each committed transaction, ignoring other tables', () => {
    const assembler = new OutboxTransactionAssembler({ schema: 'ferry', name: 'outbox' });
    const feed = (data: Buffer) => assembler.accept(decodePgOutput(data));
    expect(feed(begin(1))).toBeUndefined();
    expect(assembler.inTransaction).toBe(true);
    feed(relation(10, 'ferry', 'outbox', OUTBOX_COLUMNS));
    feed(relation(11, 'public', 'orders', ['id']));
    feed(insert(10, row('00000000-0000-4000-8000-000000000001', 'Order', 1)));
    feed(insert(11, ['99']));
    feed(insert(10, row('00000000-0000-4000-8000-000000000002', 'Order', 2)));
    const transaction = feed(commit(0x10n));
    expect(assembler.inTransaction).toBe(false);
    expect(transaction?.endLsn).toBe(0x10n);
    expect(transaction?.messages).toEqual([
      {
        id: '00000000-0000-4000-8000-000000000001',
        channel: 'Order',
        partitionKey: 'key-1',
        headers: { type: 'Noted', kind: 'event' },
        body: '{"n":1}',
      },
      expect.objectContaining({ id: '00000000-0000-4000-8000-000000000002', body: '{"n":2}' }),
    ]);
  });

  it('refuses an outbox relation without the columns it needs, and an insert before its relation', () => {
    const assembler = new OutboxTransactionAssembler({ schema: 'ferry', name: 'outbox' });
    expect(() => assembler.accept(decodePgOutput(relation(1, 'ferry', 'outbox', ['position'])))).toThrow(
      /no column message_id/,
    );
    assembler.accept(decodePgOutput(begin(1)));
    expect(() => assembler.accept(decodePgOutput(insert(2, ['x'])))).toThrow(/undescribed relation/);
  });
});

describe('replication frames', () => {
  it('reads XLogData and keepalive frames', () => {
    const xlog = Buffer.concat([Buffer.from('w'), Buffer.alloc(24), Buffer.from('B')]);
    xlog.writeBigUInt64BE(0x3_0000_0001n, 1);
    expect(parseReplicationFrame(xlog)).toEqual({
      kind: 'xlog',
      start: 0x3_0000_0001n,
      data: Buffer.from('B'),
    });
    const keepalive = Buffer.alloc(18);
    keepalive[0] = 'k'.charCodeAt(0);
    keepalive.writeBigUInt64BE(0x5n, 1);
    keepalive[17] = 1;
    expect(parseReplicationFrame(keepalive)).toEqual({
      kind: 'keepalive',
      walEnd: 0x5n,
      replyRequested: true,
    });
  });

  it('writes a standby status update confirming exactly the given position', () => {
    const frame = standbyStatusUpdate(0x20n, 0x10n, 946_684_800_000 + 1);
    expect(frame).toHaveLength(34);
    expect(String.fromCharCode(frame[0]!)).toBe('r');
    expect(frame.readBigUInt64BE(1)).toBe(0x20n);
    expect(frame.readBigUInt64BE(9)).toBe(0x10n);
    expect(frame.readBigUInt64BE(17)).toBe(0x10n);
    expect(frame.readBigInt64BE(25)).toBe(1000n);
  });

  it('formats and parses LSNs as PostgreSQL prints them', () => {
    expect(formatLsn(0x16_b374_d848n)).toBe('16/B374D848');
    expect(parseLsn('16/B374D848')).toBe(0x16_b374_d848n);
    expect(parseLsn('0/0')).toBe(0n);
    expect(() => parseLsn('nope')).toThrow(/not an LSN/);
  });
});
