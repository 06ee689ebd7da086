import pg from 'pg';
import type { Connection, QueryInternals } from './pipelined.js';

/** A statement sent ahead of the caller's: BEGIN, or the outbox's append (named, with parameters). */
export interface LeadingStatement {
  readonly name?: string;
  readonly text: string;
  readonly values?: readonly string[];
  /** Receives each row the statement answers, its fields as text (null for NULL). */
  readonly onRow?: ((fields: readonly (string | null)[]) => void) | undefined;
  /**
   * Named, without parameters, and prepared once per connection, Ferry rather than node-postgres
   * keeping track of it (see {@link ConnectionStatements}): COMMIT. Any number may lead a request.
   */
  readonly preparedPerConnection?: true;
}

/**
 * Whether each of Ferry's per-connection statements is prepared on a connection. node-postgres
 * records one named statement per request (the query's `name`, on a ParseComplete), so Ferry
 * keeps its own record for the others: `parsed` once a request that used the statement
 * completed; `unsure` if one failed or never completed (its Parse may or may not have run, or the
 * statement may have been deallocated), in which case the next use closes the statement (closing
 * one that does not exist is no error) and parses it again.
 */
type ConnectionStatements = Map<string, 'parsed' | 'unsure'>;
const preparedOn = new WeakMap<Connection, ConnectionStatements>();

/**
 * What stands for the caller's statement when there is none: the Sync, and the outcome, whose
 * `command` is the last leading statement's tag (`COMMIT`, or `ROLLBACK` for a COMMIT of a
 * transaction an earlier error aborted).
 */
class SyncOnly implements QueryInternals {
  readonly name = undefined;
  readonly text = '';

  constructor(
    private readonly callback: (error: Error | undefined, result: unknown) => void,
    private readonly lastTag: () => string,
  ) {}

  submit(connection: Connection): null {
    connection.sync();
    return null;
  }

  /** The client forgets the query on an error (no ReadyForQuery reaches it), so it settles now. */
  handleError(error: unknown): void {
    this.callback(error as Error, undefined);
  }

  handleReadyForQuery(): void {
    this.callback(undefined, { command: this.lastTag(), rowCount: null, rows: [] });
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(connection: Connection): void {
    connection.sendCopyFail('no copy expected');
  }
  handleCopyData(): void {}
}

/**
 * Statements sent ahead of the caller's, and the caller's, as one request: Parse (unless the
 * client parsed a named one before), Bind and Execute of each leading statement, then the
 * caller's statement as node-postgres itself would send it, with its Sync. Answers to the
 * caller's statement go to a node-postgres query object, so rows, types and errors come back
 * exactly as from `query`. If a leading statement fails, the server skips the rest up to the
 * Sync, the caller's statement rejects with that error, and `failedLeading` says which one it
 * was. At most one leading statement may be named (the client records a named statement as
 * parsed from the query's `name` and `text` when the server confirms a parse).
 *
 * Without a caller's statement it sends the leading statements alone, with a Sync, and resolves
 * once they have run (see {@link thenCommit}); `withTransaction` also uses this for a statement
 * node-postgres cannot send this way, which then follows on its own rather than queueing on a busy
 * client (deprecated, and gone in pg 9).
 */
export class LeadingThen {
  readonly done: Promise<pg.QueryResult>;
  readonly #inner: QueryInternals;
  readonly #leading: readonly LeadingStatement[];
  readonly #named: LeadingStatement | undefined;
  #completed = 0;
  #lastTag = '';
  #failedLeading: number | undefined;
  /** The per-connection statements this request uses, and the record to update when it ends. */
  #using: { readonly prepared: ConnectionStatements; readonly names: string[] } | undefined;

  constructor(leading: readonly LeadingStatement[], config?: pg.QueryConfig) {
    let resolve!: (result: pg.QueryResult) => void;
    let reject!: (error: unknown) => void;
    this.done = new Promise((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    const named = leading.filter((statement) => statement.name && !statement.preparedPerConnection);
    if (named.length > 1) throw new Error('at most one leading statement may be named');
    this.#leading = leading;
    this.#named = named[0];
    const callback = (error: Error | undefined, result: unknown) =>
      error ? reject(error) : resolve(result as pg.QueryResult);
    this.#inner = config
      ? (new pg.Query(config, undefined, callback) as unknown as QueryInternals)
      : new SyncOnly(callback, () => this.#lastTag);
  }

  /** The index among the leading statements of the one that failed, if one did. */
  get failedLeading(): number | undefined {
    return this.#failedLeading;
  }

  /** Read by the client on a parse: the named leading statement's, else the caller's. */
  get name(): string | undefined {
    return this.#named ? this.#named.name : this.#inner.name;
  }

  get text(): string {
    return this.#named ? this.#named.text : this.#inner.text;
  }

  submit(connection: Connection): Error | null {
    connection.stream.cork?.();
    try {
      for (const statement of this.#leading) {
        if (statement.preparedPerConnection) {
          this.#preparedPerConnection(connection, statement);
          continue;
        }
        const name = statement.name ?? '';
        const parsed =
          name !== '' &&
          (connection.parsedStatements[name] !== undefined ||
            connection.submittedNamedStatements[name] !== undefined);
        if (!parsed) {
          connection.parse({ name, text: statement.text, types: [] });
          if (name !== '') connection.submittedNamedStatements[name] = statement.text;
        }
        connection.bind({ statement: name, values: [...(statement.values ?? [])] });
        connection.execute({});
      }
      const error = this.#inner.submit(connection);
      // Not expected (the config was checked), but the server must still get its Sync.
      if (error) connection.sync();
      return error;
    } finally {
      connection.stream.uncork?.();
    }
  }

  /** Bind and Execute of a per-connection statement, with Parse (and Close) when it may be missing. */
  #preparedPerConnection(connection: Connection, statement: LeadingStatement): void {
    const name = statement.name!;
    let prepared = preparedOn.get(connection);
    if (!prepared) {
      prepared = new Map();
      preparedOn.set(connection, prepared);
    }
    const state = prepared.get(name);
    if (state !== 'parsed') {
      if (state === 'unsure') connection.close({ type: 'S', name });
      connection.parse({ name, text: statement.text, types: [] });
    }
    // Unsure until the request succeeds: a failed one may have failed because the statement was
    // gone (a DEALLOCATE or DISCARD ALL on the connection), so the next use parses it again.
    prepared.set(name, 'unsure');
    this.#using ??= { prepared, names: [] };
    this.#using.names.push(name);
    connection.bind({ statement: name, values: [] });
    connection.execute({});
  }

  handleCommandComplete(message: unknown, connection: Connection): void {
    if (this.#completed === this.#leading.length) {
      this.#inner.handleCommandComplete(message, connection);
      return;
    }
    this.#completed++;
    this.#lastTag = (message as { text: string }).text;
  }

  handleError(error: unknown, connection: Connection): void {
    if (this.#completed < this.#leading.length) this.#failedLeading = this.#completed;
    this.#inner.handleError(error, connection);
  }

  handleRowDescription(message: unknown): void {
    if (this.#completed < this.#leading.length) return; // a leading statement's (the append's wake-up row)
    this.#inner.handleRowDescription(message);
  }

  handleDataRow(message: unknown): void {
    if (this.#completed < this.#leading.length) {
      // A leading statement's row (the append's wake-up answer): its own, not the caller's.
      this.#leading[this.#completed]!.onRow?.((message as { fields: (string | null)[] }).fields);
      return;
    }
    this.#inner.handleDataRow(message);
  }

  handleEmptyQuery(connection: Connection): void {
    if (this.#completed < this.#leading.length) return; // a leading statement's (the append's wake-up row)
    this.#inner.handleEmptyQuery(connection);
  }

  handlePortalSuspended(connection: Connection): void {
    this.#inner.handlePortalSuspended(connection);
  }

  handleReadyForQuery(connection: Connection): void {
    // Reached only if nothing failed (after an error the client forgets the query): every Parse ran.
    if (this.#using) for (const name of this.#using.names) this.#using.prepared.set(name, 'parsed');
    this.#inner.handleReadyForQuery(connection);
  }

  handleCopyInResponse(connection: Connection): void {
    this.#inner.handleCopyInResponse(connection);
  }

  handleCopyData(message: unknown, connection: Connection): void {
    this.#inner.handleCopyData(message, connection);
  }
}

/**
 * COMMIT, prepared once per connection: parsing it anew in each request cost the server and the
 * client a few µs of CPU each per transaction (decision 0005, fourth addendum).
 */
const COMMIT: LeadingStatement = { name: 'ferry_commit', text: 'COMMIT', preparedPerConnection: true };

/**
 * A statement and COMMIT as one request. If the statement fails the server skips the COMMIT,
 * so the transaction is left aborted, and `done` rejects with the statement's error; otherwise
 * its `command` is the COMMIT's tag.
 */
export function thenCommit(statement: LeadingStatement): LeadingThen {
  return new LeadingThen([statement, COMMIT]);
}
