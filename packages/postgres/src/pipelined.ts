import pg from 'pg';

/*
 * Requests that carry more than one statement. node-postgres sends one statement per round trip
 * and does not pipeline, but it runs *submittables*: objects that write protocol messages
 * themselves and receive the answers (pg-cursor is one). These write several statements in the
 * extended protocol with a single Sync, so the server answers them in one go; if one fails, the
 * server skips the rest up to the Sync. See decision 0010.
 */

/** Runs `query` on `client` after the queries queued before it; resolves to its outcome. */
export function submit<T>(client: pg.ClientBase, query: { readonly done: Promise<T> }): Promise<T> {
  client.query(query as unknown as pg.Submittable);
  return query.done;
}

/** The parts of node-postgres' connection a submittable drives (pg/lib/connection.js). */
interface Connection {
  readonly parsedStatements: Record<string, string>;
  readonly submittedNamedStatements: Record<string, string>;
  readonly stream: { cork?(): void; uncork?(): void };
  parse(query: { name: string; text: string; types: unknown[] }): void;
  bind(config: { statement: string; values: readonly string[] }): void;
  execute(config: Record<string, never>): void;
  sync(): void;
  sendCopyFail(message: string): void;
}

/** A named statement with text parameters. */
export interface NamedStatement {
  readonly name: string;
  readonly text: string;
  readonly values: string[];
}

/**
 * A statement and COMMIT as one request: Parse (unless the client parsed the statement before),
 * Bind, Execute, then Parse, Bind, Execute of COMMIT, and one Sync. If the statement fails the
 * server skips the COMMIT, so the transaction is left aborted, and `done` rejects with the
 * statement's error. A node-postgres submittable, like pg-cursor.
 */
export class StatementThenCommit {
  /** Read by the client when the server reports a parse: it records the named statement as parsed. */
  readonly name: string;
  readonly text: string;
  readonly done: Promise<{ command: string }>;
  #resolve!: (result: { command: string }) => void;
  #reject!: (error: unknown) => void;
  #completed = 0;
  #command = '';

  constructor(private readonly statement: NamedStatement) {
    this.name = statement.name;
    this.text = statement.text;
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  submit(connection: Connection): null {
    connection.stream.cork?.();
    try {
      const parsed =
        connection.parsedStatements[this.name] !== undefined ||
        connection.submittedNamedStatements[this.name] !== undefined;
      if (!parsed) {
        connection.parse({ name: this.name, text: this.text, types: [] });
        connection.submittedNamedStatements[this.name] = this.text;
      }
      connection.bind({ statement: this.name, values: this.statement.values });
      connection.execute({});
      connection.parse({ name: '', text: 'COMMIT', types: [] });
      connection.bind({ statement: '', values: [] });
      connection.execute({});
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}

  handleCommandComplete(message: { text: string }): void {
    this.#completed++;
    // The second command complete is the COMMIT's ("COMMIT", or "ROLLBACK" if the transaction had failed).
    if (this.#completed === 2) this.#command = message.text;
  }

  handleError(error: unknown): void {
    this.#reject(error);
  }

  handleReadyForQuery(): void {
    this.#resolve({ command: this.#command });
  }

  handleCopyInResponse(connection: Connection): void {
    connection.sendCopyFail('the outbox insert does not copy');
  }

  handleCopyData(): void {}
}

/** The node-postgres query internals a submittable forwards the answers to (pg/lib/query.js). */
interface QueryInternals {
  readonly name?: string;
  readonly text: string;
  submit(connection: Connection): Error | null;
  handleRowDescription(message: unknown): void;
  handleDataRow(message: unknown): void;
  handleCommandComplete(message: unknown, connection: Connection): void;
  handleEmptyQuery(connection: Connection): void;
  handlePortalSuspended(connection: Connection): void;
  handleError(error: unknown, connection: Connection): void;
  handleReadyForQuery(connection: Connection): void;
  handleCopyInResponse(connection: Connection): void;
  handleCopyData(message: unknown, connection: Connection): void;
}

/**
 * The query config of a caller's statement that can follow BEGIN in one request: unnamed, with
 * parameters (so node-postgres would send it in the extended protocol anyway), no callback, no
 * row paging. Anything else gets a BEGIN of its own.
 */
export function pipelinable(args: readonly unknown[]): pg.QueryConfig | undefined {
  const [first, second, third] = args;
  if (third !== undefined) return undefined;
  if (typeof first === 'string') {
    return Array.isArray(second) && second.length > 0 ? { text: first, values: second } : undefined;
  }
  if (second !== undefined || typeof first !== 'object' || first === null || 'submit' in first)
    return undefined;
  const config = first as pg.QueryConfig & { rows?: unknown; callback?: unknown };
  if (typeof config.text !== 'string' || config.name || config.rows !== undefined || config.callback)
    return undefined;
  return Array.isArray(config.values) && config.values.length > 0 ? config : undefined;
}

/** A statement sent ahead of the caller's: BEGIN, or the outbox's append (named, with parameters). */
export interface LeadingStatement {
  readonly name?: string;
  readonly text: string;
  readonly values?: readonly string[];
}

/** What stands for the caller's statement when there is none: the Sync, and the outcome. */
class SyncOnly implements QueryInternals {
  readonly name = undefined;
  readonly text = '';
  #error: unknown;

  constructor(private readonly callback: (error: Error | undefined, result: unknown) => void) {}

  submit(connection: Connection): null {
    connection.sync();
    return null;
  }

  handleError(error: unknown): void {
    this.#error ??= error;
  }

  handleReadyForQuery(): void {
    this.callback(this.#error as Error | undefined, { command: 'SYNC', rowCount: null, rows: [] });
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
 * once they have run: for a statement node-postgres cannot send this way, which then follows on
 * its own rather than queueing on a busy client (deprecated, and gone in pg 9).
 */
export class LeadingThen {
  readonly done: Promise<pg.QueryResult>;
  readonly #inner: QueryInternals;
  readonly #leading: readonly LeadingStatement[];
  readonly #named: LeadingStatement | undefined;
  #completed = 0;
  #failedLeading: number | undefined;

  constructor(leading: readonly LeadingStatement[], config?: pg.QueryConfig) {
    let resolve!: (result: pg.QueryResult) => void;
    let reject!: (error: unknown) => void;
    this.done = new Promise((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    const named = leading.filter((statement) => statement.name);
    if (named.length > 1) throw new Error('at most one leading statement may be named');
    this.#leading = leading;
    this.#named = named[0];
    const callback = (error: Error | undefined, result: unknown) =>
      error ? reject(error) : resolve(result as pg.QueryResult);
    this.#inner = config
      ? (new pg.Query(config, undefined, callback) as unknown as QueryInternals)
      : new SyncOnly(callback);
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

  handleCommandComplete(message: unknown, connection: Connection): void {
    if (this.#completed < this.#leading.length) this.#completed++;
    else this.#inner.handleCommandComplete(message, connection);
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
    if (this.#completed < this.#leading.length) return; // a leading statement's (the append's wake-up row)
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
    this.#inner.handleReadyForQuery(connection);
  }

  handleCopyInResponse(connection: Connection): void {
    this.#inner.handleCopyInResponse(connection);
  }

  handleCopyData(message: unknown, connection: Connection): void {
    this.#inner.handleCopyData(message, connection);
  }
}
