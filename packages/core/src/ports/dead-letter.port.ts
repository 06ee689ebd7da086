import type { WireMessage } from '../messaging/message.js';

/** A message a consumer group gave up on, with why. */
export interface DeadLetter {
  readonly id: string;
  readonly group: string;
  readonly message: WireMessage;
  /** Short reason, e.g. `malformed: body is not JSON` or `handler failed: Error: boom`. */
  readonly reason: string;
  /** The last error's stack, when there was one. */
  readonly error?: string | undefined;
  readonly attempts: number;
  readonly deadLetteredAt: string;
  /** When it was last sent back to its channel, if ever. */
  readonly replayedAt?: string | undefined;
}

/** What a consumer records when it gives up on a message. */
export type NewDeadLetter = Omit<DeadLetter, 'id' | 'deadLetteredAt' | 'replayedAt'>;

/** Filters for listing dead letters. */
export interface DeadLetterQuery {
  readonly group?: string;
  readonly channel?: string;
  /** Include those already replayed (default false). */
  readonly includeReplayed?: boolean;
  readonly limit?: number;
}

/**
 * The dead-letter channel's store: listed and replayed through an API. Replay sends the
 * original message (same id, same headers, plus `replayCount`) back to its channel; groups that
 * handled it before skip it as a duplicate, the group that dead-lettered it handles it again.
 */
export interface DeadLetterStore {
  add(entry: NewDeadLetter): Promise<void>;
  list(query?: DeadLetterQuery): Promise<DeadLetter[]>;
  get(id: string): Promise<DeadLetter | undefined>;
  /** Sends a dead letter back to its channel and marks it replayed. */
  replay(id: string): Promise<void>;
}
