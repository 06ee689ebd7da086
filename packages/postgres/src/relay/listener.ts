import pg from 'pg';

/**
 * A dedicated connection that LISTENs on a PostgreSQL channel and calls `onNotify`; it
 * reconnects after losing the connection (calling `onNotify` then too, since notifications
 * may have been missed meanwhile).
 */
export class PgListener {
  #client: pg.Client | undefined;
  #stopped = false;
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

  async start(): Promise<void> {
    this.#stopped = false;
    await this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#connected = false;
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString });
    client.on('notification', (n) => this.onNotify(n.payload ?? ''));
    client.on('error', () => this.#reconnect(client));
    client.on('end', () => this.#reconnect(client));
    this.#client = client;
    await client.connect();
    await client.query(`LISTEN ${client.escapeIdentifier(this.channel)}`);
    this.#connected = true;
  }

  #reconnect(client: pg.Client): void {
    if (this.#stopped || client !== this.#client) return;
    this.#connected = false;
    this.#client = undefined;
    void client.end().catch(() => {});
    this.#retry();
  }

  #retry(): void {
    setTimeout(() => {
      if (this.#stopped) return;
      this.#connect()
        .then(() => this.onNotify(''))
        .catch(() => {
          const failed = this.#client;
          this.#client = undefined;
          void failed?.end().catch(() => {});
          this.#retry();
        });
    }, this.retryMs);
  }
}
