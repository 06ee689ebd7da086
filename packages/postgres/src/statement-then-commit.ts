import type { Connection, NamedStatement } from './pipelined.js';

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
