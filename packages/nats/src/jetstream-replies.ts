import type { JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

/** Pause before retry `attempt` (from 1): doubling from 100 ms, at most 2 s. */
export function backoff(attempt: number): number {
  return Math.min(2000, 50 * 2 ** attempt);
}

/** The ack subject of a JetStream message (the client keeps it as `reply`). */
export function replyOf(msg: JsMsg): string {
  const reply = (msg as unknown as { reply?: unknown }).reply;
  if (typeof reply !== 'string' || reply === '') throw new Error('JetStream message has no ack subject');
  return reply;
}

/**
 * Sends `payload` (`-NAK`, `+TERM`) to a message's ack subject and waits for the server's answer,
 * retrying with {@link backoff} while `keepTrying(attempt)` says so and the connection is open;
 * otherwise hands the last error to `gaveUp` (JetStream will then redeliver the message).
 */
export async function confirmReply(
  nc: NatsConnection,
  msg: JsMsg,
  payload: string,
  options: {
    readonly timeoutMs: number;
    readonly keepTrying: (attempt: number) => boolean;
    readonly gaveUp: (error: unknown) => void;
  },
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await nc.request(replyOf(msg), payload, { timeout: options.timeoutMs });
      return;
    } catch (error) {
      if (!options.keepTrying(attempt) || nc.isClosed()) {
        options.gaveUp(error);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, backoff(attempt)));
    }
  }
}
