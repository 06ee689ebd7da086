import pg from 'pg';

/**
 * A dedicated connection that LISTENs on a PostgreSQL channel and calls `onNotify`; it
 * reconnects after losing the connection (calling `onNotify` then too, since notifications
 * may have been missed meanwhile). One connection at a time: a lost connection schedules one
 * reconnection attempt, and a failed attempt the next, however many ways the loss is reported.
 */
export class PgListener {
  #client: pg.Client | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  /** True from a successful start until stop: only then is a lost connection made again. */
  #listening = false;
  #connected = false;

  constructor(
    private readonly connectionString: string,
    private readonly channel: string,
    private readonly onNotify: (payload: string) => void,
    private readonly retryMs = 500,
  ) {}

  get connected(): boolean {
    return this.#connected;
  }

  /** Connects and LISTENs; rejects (and leaves nothing open or retrying) if that fails. */
  async start(): Promise<void> {
    await this.#connect();
    this.#listening = true;
  }

  async stop(): Promise<void> {
    this.#listening = false;
    this.#connected = false;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString });
    client.on('notification', (n) => this.onNotify(n.payload ?? ''));
    // node-postgres may report one loss as an error, an end, a rejected call, or all of them.
    client.on('error', () => this.#lost(client));
    client.on('end', () => this.#lost(client));
    this.#client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(this.channel)}`);
    } catch (error) {
      this.#lost(client);
      throw error;
    }
    if (this.#client === client) this.#connected = true;
  }

  /** The connection `client` is gone: end it and, if it is the current one, try again later. */
  #lost(client: pg.Client): void {
    if (client !== this.#client) return; // an earlier connection, or this loss already handled
    this.#client = undefined;
    this.#connected = false;
    void client.end().catch(() => {});
    if (this.#listening) this.#retry();
  }

  #retry(): void {
    if (this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#listening || this.#client) return;
      // A failed attempt has already scheduled the next one (#lost).
      this.#connect().then(
        () => this.onNotify(''),
        () => {},
      );
    }, this.retryMs);
  }
}
