import pg from 'pg';
import { parseReplicationFrame, type ReplicationFrame } from './replication-protocol.js';

/** node-postgres accepts `replication` although its types do not list it. */
interface ReplicationClientConfig extends pg.ClientConfig {
  readonly replication: 'database';
}

/** The parts of node-postgres' connection that streaming needs (not in its published types). */
interface CopyBothConnection {
  sendCopyFromChunk(chunk: Buffer): void;
  readonly stream: { pause(): void; resume(): void };
  on(event: 'copyData', listener: (message: { chunk: Buffer }) => void): void;
  once(event: 'replicationStart', listener: () => void): void;
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * A logical replication connection (`replication=database`) on node-postgres: replication
 * commands before streaming, then `START_REPLICATION` in CopyBoth mode, frames to a callback
 * and standby status updates back. `closed` settles once the connection or its stream ends,
 * with the error that ended it (undefined after {@link ReplicationConnection.close}).
 */
export class ReplicationConnection {
  readonly closed: Promise<Error | undefined>;
  readonly #settle: (error: Error | undefined) => void;
  #closing = false;

  private constructor(private readonly client: pg.Client) {
    let settle!: (error: Error | undefined) => void;
    this.closed = new Promise<Error | undefined>((resolve) => {
      settle = resolve;
    });
    this.#settle = (error) => settle(this.#closing ? undefined : error);
  }

  /** Opens a replication connection to the database of `connectionString`. */
  static async connect(connectionString: string): Promise<ReplicationConnection> {
    const config: ReplicationClientConfig = { connectionString, replication: 'database' };
    const client = new pg.Client(config);
    const connection = new ReplicationConnection(client);
    client.on('error', (error) => connection.#settle(error));
    client.on('end', () => connection.#settle(new Error('replication connection ended by the server')));
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    return connection;
  }

  /** Runs a replication command (such as `CREATE_REPLICATION_SLOT`) before streaming starts. */
  async command<R extends pg.QueryResultRow>(sql: string): Promise<R[]> {
    return (await this.client.query<R>(sql)).rows;
  }

  /**
   * Starts streaming `slot` with pgoutput from the slot's confirmed position; resolves once the
   * server streams, rejects if it refuses (for instance while another session holds the slot).
   */
  async stream(slot: string, publication: string, onFrame: (frame: ReplicationFrame) => void): Promise<void> {
    const connection = this.#copyBoth();
    connection.on('copyData', ({ chunk }) => {
      const frame = parseReplicationFrame(chunk);
      if (frame) onFrame(frame);
    });
    await new Promise<void>((resolve, reject) => {
      let started = false;
      connection.once('replicationStart', () => {
        started = true;
        resolve();
      });
      // The command settles when streaming ends: before it started, the server refused it;
      // after, the server stopped streaming (an error in the walsender leaves the connection open).
      const ended = (error: Error) => (started ? this.#settle(error) : reject(error));
      this.client
        .query(
          `START_REPLICATION SLOT ${quoteIdentifier(slot)} LOGICAL 0/0 (proto_version '1', publication_names ${quoteLiteral(quoteIdentifier(publication))})`,
        )
        .then(
          () => ended(new Error('the server ended the replication stream')),
          (error: unknown) => ended(error instanceof Error ? error : new Error(String(error))),
        );
    });
  }

  /** Sends a frame (a standby status update) to the server. */
  send(frame: Buffer): void {
    if (this.#closing) return;
    try {
      this.#copyBoth().sendCopyFromChunk(frame);
    } catch {
      // The connection is gone; `closed` reports why.
    }
  }

  /** Stops reading from the socket (backpressure); the server then waits. */
  pause(): void {
    this.#copyBoth().stream.pause();
  }

  resume(): void {
    this.#copyBoth().stream.resume();
  }

  /** Closes the connection; frames sent before are delivered first. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.client.end().catch(() => {});
  }

  #copyBoth(): CopyBothConnection {
    return this.client.connection as unknown as CopyBothConnection;
  }
}
