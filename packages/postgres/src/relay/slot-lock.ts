import pg from 'pg';

/** Advisory-lock namespace of replication slots (first key of the two-int form). */
const SLOT_LOCK_NAMESPACE = 0x46_52_54; // "FRT"

const never = new Promise<void>(() => {});

/**
 * The right to stream one replication slot: a session-level advisory lock on a dedicated
 * connection, keyed by the slot name. The holder streams; other tailers ask again now and then
 * on their own connection and stand by meanwhile. A holder that dies loses its connection and
 * with it the lock. `lost` settles when the held lock's connection ends, so that the holder
 * stops streaming.
 */
export class SlotLock {
  #client: pg.Client | undefined;
  #ended: Promise<void> = never;
  #held = false;

  constructor(
    private readonly connectionString: string,
    private readonly slot: string,
  ) {}

  /** Settles when the connection holding the lock ends (never while the lock is not held). */
  get lost(): Promise<void> {
    return this.#held ? this.#ended : never;
  }

  /** Takes the lock if it is free; resolves to whether this instance now holds it. */
  async tryAcquire(): Promise<boolean> {
    if (this.#held) return true;
    const client = await this.#connection();
    try {
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked',
        [SLOT_LOCK_NAMESPACE, this.slot],
      );
      this.#held = rows[0]?.locked === true;
      return this.#held;
    } catch (error) {
      await this.release();
      throw error;
    }
  }

  /** Releases the lock (and its connection). */
  async release(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#held = false;
    this.#ended = never;
    await client?.end().catch(() => {});
  }

  async #connection(): Promise<pg.Client> {
    if (this.#client) return this.#client;
    const client = new pg.Client({ connectionString: this.connectionString });
    this.#ended = new Promise<void>((resolve) => {
      client.on('error', () => resolve());
      client.on('end', () => resolve());
    });
    try {
      await client.connect();
    } catch (error) {
      this.#ended = never;
      await client.end().catch(() => {});
      throw error;
    }
    this.#client = client;
    return client;
  }
}
