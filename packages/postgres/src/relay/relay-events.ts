/** What a relay reports; the service runtime turns these into metrics and logs. */
export type RelayEvent =
  | {
      readonly kind: 'published';
      readonly relay: string;
      readonly count: number;
      readonly durationMs: number;
    }
  | {
      readonly kind: 'publish-failed';
      readonly relay: string;
      readonly error: unknown;
      readonly retryInMs: number;
    }
  | { readonly kind: 'purged'; readonly relay: string; readonly count: number };

/** How far behind a relay is. */
export interface RelayLag {
  /** Messages committed and not yet acknowledged by the broker. */
  readonly messages: number;
  /** Age of the oldest of them, in ms (0 when none). */
  readonly oldestMs: number;
}

/** A relay from a service's outbox to a broker. */
export interface MessageRelay {
  readonly name: string;
  start(): Promise<void>;
  /** Finishes the batch in flight, then stops. */
  stop(): Promise<void>;
  lag(): Promise<RelayLag>;
  isRunning(): boolean;
}
