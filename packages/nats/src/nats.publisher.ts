import type { WireMessage } from '@ferry/core';
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { JetStreamTopology } from './jetstream-topology.js';
import { messageSubject } from './naming.js';
import type { ResolvedNatsOptions } from './nats.options.js';
import { partitionOf } from './partitioning.js';
import { encodeWire } from './wire-codec.js';

/** One `publish` call: its messages not yet acknowledged, and the first failure. */
interface Batch {
  unacknowledged: number;
  failure: unknown;
  /** When the last acknowledgement arrived (or the batch began): the timeout runs from there. */
  progressAt: number;
  /** Wakes the sender once at most this many are unacknowledged, or on failure. */
  wake: (() => void) | undefined;
  wakeAt: number;
}

/**
 * Publishes batches to JetStream with many publishes in flight and waits for every stream ack.
 *
 * Each message is a core NATS publish whose reply subject is one of this publisher's own inbox
 * (`<inbox>.<n>`, one subscription for all), where JetStream sends its acknowledgement: the
 * asynchronous publish other JetStream clients offer (Go's `PublishAsync`). The client's
 * `js.publish` makes a request per message (a timer, a promise, a registration in its request
 * table); here a batch has one timer and each message a map entry (decision 0012).
 *
 * Order: publishes leave in the batch's order over one connection, so JetStream stores messages
 * of a key in that order. After the first failure no further publish of the batch is sent, so a
 * later message of a key is never stored behind an earlier one that failed and gets retried;
 * the caller retries the batch and JetStream's de-duplication (`Nats-Msg-Id`) drops the ones
 * already stored. A batch fails when an acknowledgement reports an error, when nothing answers a
 * subject (no stream), and when no acknowledgement arrives for `requestTimeoutMs` (an ack lost
 * in a reconnect).
 */
export class NatsPublisher {
  readonly #waiting = new Map<string, Batch>();
  #replies: Subscription | undefined;
  #prefix = '';
  #next = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly topology: JetStreamTopology,
    private readonly options: ResolvedNatsOptions,
  ) {}

  /** Resolves once JetStream has stored (or recognised as duplicates) all `messages`. */
  async publish(messages: readonly WireMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const channels = new Set(messages.map((m) => m.channel));
    await Promise.all([...channels].map((channel) => this.topology.ensureStream(channel)));
    const { namespace, partitions, publishWindow, requestTimeoutMs } = this.options;
    const prefix = this.#subscribe();
    const batch: Batch = {
      unacknowledged: 0,
      failure: undefined,
      progressAt: performance.now(),
      wake: undefined,
      wakeAt: 0,
    };
    const pause = (wakeAt: number) =>
      new Promise<void>((resolve) => {
        batch.wakeAt = wakeAt;
        batch.wake = resolve;
      });
    const timer = setInterval(
      () => {
        if (performance.now() - batch.progressAt < requestTimeoutMs) return;
        batch.failure ??= new Error(`no acknowledgement from JetStream within ${requestTimeoutMs} ms`);
        batch.wake?.();
      },
      Math.max(10, Math.floor(requestTimeoutMs / 4)),
    );
    try {
      for (const message of messages) {
        while (batch.unacknowledged >= publishWindow && batch.failure === undefined)
          await pause(publishWindow - 1);
        if (batch.failure !== undefined) break;
        const { headers, data } = encodeWire(message);
        const subject = messageSubject(
          namespace,
          message.channel,
          partitionOf(message.partitionKey, partitions),
        );
        const token = String(this.#next++);
        this.#waiting.set(token, batch);
        batch.unacknowledged++;
        try {
          this.nc.publish(subject, data, { headers, reply: `${prefix}.${token}` });
        } catch (error) {
          this.#waiting.delete(token);
          batch.unacknowledged--;
          batch.failure ??= error;
        }
      }
      while (batch.unacknowledged > 0 && batch.failure === undefined) await pause(0);
    } finally {
      clearInterval(timer);
      // Acknowledgements still due belong to a failed batch: nobody waits for them any more.
      if (batch.failure !== undefined)
        for (const [token, owner] of this.#waiting) if (owner === batch) this.#waiting.delete(token);
    }
    if (batch.failure !== undefined) {
      // A stream deleted behind our back answers with "no responders": check it again next time.
      for (const channel of channels) this.topology.forget(channel);
      throw new Error(`publish to JetStream failed: ${describe(batch.failure)}`, { cause: batch.failure });
    }
  }

  /** The reply subject prefix, subscribing on first use (the client renews it across reconnects). */
  #subscribe(): string {
    if (this.#replies && !this.#replies.isClosed()) return this.#prefix;
    this.#prefix = createInbox();
    this.#replies = this.nc.subscribe(`${this.#prefix}.*`, {
      callback: (error, msg) => this.#acknowledged(error, msg),
    });
    return this.#prefix;
  }

  #acknowledged(error: Error | null, msg: Msg): void {
    const token = msg.subject.slice(this.#prefix.length + 1);
    const batch = this.#waiting.get(token);
    if (!batch) return;
    this.#waiting.delete(token);
    batch.unacknowledged--;
    batch.progressAt = performance.now();
    const failure = error ?? pubAckError(msg);
    if (failure !== undefined) batch.failure ??= failure;
    if (batch.unacknowledged > batch.wakeAt && batch.failure === undefined) return;
    const wake = batch.wake;
    batch.wake = undefined;
    wake?.();
  }
}

/** The error an acknowledgement carries: a status (503: no stream takes the subject) or a JetStream API error. */
function pubAckError(msg: Msg): Error | undefined {
  const code = msg.headers?.code ?? 0;
  if (msg.data.length === 0) {
    return code >= 400
      ? new Error(
          `${code === 503 ? 'no responders' : 'status'} ${code} ${msg.headers?.description ?? ''}`.trim(),
        )
      : new Error('empty acknowledgement from JetStream');
  }
  let ack: { stream?: unknown; error?: { code?: number; description?: string } };
  try {
    ack = msg.json();
  } catch {
    return new Error('acknowledgement from JetStream is not JSON');
  }
  if (ack.error)
    return new Error(`JetStream error ${ack.error.code ?? ''}: ${ack.error.description ?? ''}`.trim());
  if (typeof ack.stream !== 'string' || ack.stream === '')
    return new Error('invalid acknowledgement from JetStream');
  return undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
