/** One occurrence of an unexpected error, as captured. */
export interface ExceptionOccurrence {
  readonly fingerprint: string;
  readonly errorType: string;
  readonly message: string;
  readonly stack?: string | undefined;
  readonly traceId?: string | undefined;
  /** Where it happened: route, message type, component. */
  readonly context: Readonly<Record<string, unknown>>;
}

/** A de-duplicated error: how often, since when, and a sample (the latest). */
export interface TrackedException {
  readonly fingerprint: string;
  readonly errorType: string;
  readonly message: string;
  readonly stack: string | null;
  readonly traceId: string | null;
  readonly context: Readonly<Record<string, unknown>>;
  readonly count: number;
  readonly firstSeen: Date;
  readonly lastSeen: Date;
  readonly resolved: boolean;
  readonly resolvedAt: Date | null;
  readonly resolvedBy: string | null;
}

/** Where tracked exceptions live: the service's database, or memory without one. */
export interface ExceptionStore {
  /** Counts an occurrence; a resolved exception that occurs again is reopened. Returns the new count. */
  record(occurrence: ExceptionOccurrence): Promise<{ count: number }>;
  list(filter?: {
    readonly resolved?: boolean | undefined;
    readonly limit?: number | undefined;
  }): Promise<TrackedException[]>;
  get(fingerprint: string): Promise<TrackedException | undefined>;
  /** Marks it resolved; false when there is no such exception. */
  resolve(fingerprint: string, by: string): Promise<boolean>;
}

/** An {@link ExceptionStore} in memory, for services without a database and for tests. */
export class MemoryExceptionStore implements ExceptionStore {
  readonly #items = new Map<string, TrackedException>();

  async record(o: ExceptionOccurrence): Promise<{ count: number }> {
    const now = new Date();
    const previous = this.#items.get(o.fingerprint);
    const next: TrackedException = {
      fingerprint: o.fingerprint,
      errorType: o.errorType,
      message: o.message,
      stack: o.stack ?? null,
      traceId: o.traceId ?? null,
      context: o.context,
      count: (previous?.count ?? 0) + 1,
      firstSeen: previous?.firstSeen ?? now,
      lastSeen: now,
      resolved: false,
      resolvedAt: null,
      resolvedBy: null,
    };
    this.#items.set(o.fingerprint, next);
    return { count: next.count };
  }

  async list(
    filter: { resolved?: boolean | undefined; limit?: number | undefined } = {},
  ): Promise<TrackedException[]> {
    return [...this.#items.values()]
      .filter((e) => filter.resolved === undefined || e.resolved === filter.resolved)
      .sort((a, b) => b.lastSeen.getTime() - a.lastSeen.getTime())
      .slice(0, filter.limit ?? 100);
  }

  async get(fingerprint: string): Promise<TrackedException | undefined> {
    return this.#items.get(fingerprint);
  }

  async resolve(fingerprint: string, by: string): Promise<boolean> {
    const item = this.#items.get(fingerprint);
    if (!item) return false;
    this.#items.set(fingerprint, { ...item, resolved: true, resolvedAt: new Date(), resolvedBy: by });
    return true;
  }
}
