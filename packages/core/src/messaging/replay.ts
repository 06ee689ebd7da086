import type { WireMessage } from './message.js';

/** Header counting how often a message was replayed from the dead-letter channel. */
export const REPLAY_COUNT_HEADER = 'replayCount';

/**
 * The wire message to send again when replaying a dead letter: same id (so groups that handled
 * it skip it as a duplicate), with `replayCount` raised so that brokers that de-duplicate by id
 * (JetStream) accept it as new.
 */
export function replayedWire(message: WireMessage): WireMessage {
  const count = Number(message.headers[REPLAY_COUNT_HEADER] ?? '0') + 1;
  return { ...message, headers: { ...message.headers, [REPLAY_COUNT_HEADER]: String(count) } };
}

/** The id a de-duplicating broker should use: the message id, plus the replay count if any. */
export function deduplicationId(message: WireMessage): string {
  const count = message.headers[REPLAY_COUNT_HEADER];
  return count ? `${message.id}:replay:${count}` : message.id;
}
