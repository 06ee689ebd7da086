import type { WireMessage } from '@ferry/core';
import type { Lsn } from './lsn.js';
import type { PgOutputColumn, PgOutputMessage } from './pgoutput-decoder.js';

/** The outbox rows one committed transaction inserted, in insertion order. */
export interface CommittedTransaction {
  readonly messages: readonly WireMessage[];
  /** End of the commit record: confirming it tells the server that the transaction is done. */
  readonly endLsn: Lsn;
  readonly commitTimeMs: number;
}

const COLUMNS = ['message_id', 'channel', 'partition_key', 'headers', 'body'] as const;
type ColumnIndexes = Record<(typeof COLUMNS)[number], number>;

function indexColumns(table: string, columns: readonly PgOutputColumn[]): ColumnIndexes {
  const indexes: Partial<ColumnIndexes> = {};
  for (const name of COLUMNS) {
    const index = columns.findIndex((c) => c.name === name);
    if (index < 0) throw new Error(`pgoutput: ${table} has no column ${name}`);
    indexes[name] = index;
  }
  return indexes as ColumnIndexes;
}

function column(values: readonly (string | null)[], index: number, name: string): string {
  const value = values[index];
  if (value === null || value === undefined) throw new Error(`pgoutput: outbox row without ${name}`);
  return value;
}

/**
 * Turns the pgoutput stream into committed outbox transactions: remembers the relations the
 * server describes, collects a transaction's outbox inserts between Begin and Commit, and
 * hands them over at Commit. Rolled-back transactions never reach the stream (the server
 * decodes a transaction only once it commits), nor do rows of aborted subtransactions.
 */
export class OutboxTransactionAssembler {
  readonly #relations = new Map<number, ColumnIndexes | undefined>();
  #open: { messages: WireMessage[] } | undefined;

  constructor(private readonly table: { readonly schema: string; readonly name: string }) {}

  /** True between a Begin and its Commit. */
  get inTransaction(): boolean {
    return this.#open !== undefined;
  }

  /** Feeds one decoded message; returns the transaction when `message` commits one. */
  accept(message: PgOutputMessage): CommittedTransaction | undefined {
    switch (message.tag) {
      case 'begin':
        this.#open = { messages: [] };
        return undefined;
      case 'relation': {
        const ours = message.schema === this.table.schema && message.table === this.table.name;
        this.#relations.set(
          message.relationId,
          ours ? indexColumns(`${message.schema}.${message.table}`, message.columns) : undefined,
        );
        return undefined;
      }
      case 'insert': {
        if (!this.#open) throw new Error('pgoutput: insert outside a transaction');
        if (!this.#relations.has(message.relationId))
          throw new Error(`pgoutput: insert into undescribed relation ${message.relationId}`);
        const at = this.#relations.get(message.relationId);
        if (!at) return undefined;
        const { values } = message;
        this.#open.messages.push({
          id: column(values, at.message_id, 'message_id'),
          channel: column(values, at.channel, 'channel'),
          partitionKey: column(values, at.partition_key, 'partition_key'),
          headers: JSON.parse(column(values, at.headers, 'headers')) as Record<string, string>,
          body: column(values, at.body, 'body'),
        });
        return undefined;
      }
      case 'commit': {
        const messages = this.#open?.messages ?? [];
        this.#open = undefined;
        return { messages, endLsn: message.endLsn, commitTimeMs: message.commitTimeMs };
      }
      default:
        return undefined;
    }
  }
}
