import { backoffDelay, type WireMessage } from '@ferry/core';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { asError, type ConnectionKeeper, RabbitMqClosedError } from './connection.js';
import type { ResolvedOptions } from './rabbitmq.options.js';
import { sleep } from './sleep.js';
import { PartitionCountMismatchError, type Topology } from './topology.js';
import { type EncodedMessage, encodeWire } from './wire-codec.js';

/** Thrown when messages could not be confirmed by RabbitMQ within `publishTimeoutMs`. */
export class RabbitMqPublishError extends Error {
  override readonly name = 'RabbitMqPublishError';
}

interface ConfirmSession {
  readonly model: ChannelModel;
  readonly channel: ConfirmChannel;
  /** Channel exchanges declared on this channel. */
  readonly declared: Set<string>;
  open: boolean;
}

/**
 * Publishes with publisher confirms on one confirm channel: a call sends all its messages
 * without waiting between them and resolves once RabbitMQ has confirmed every one. Messages
 * that were not confirmed (a nack, or the channel or connection lost) are sent again on the
 * next connection until `publishTimeoutMs` runs out; then the call fails. It never resolves for
 * a message RabbitMQ did not confirm; a message may be stored twice if a confirm was lost,
 * which consumers absorb by message id (the inbox).
 */
export class ConfirmPublisher {
  #session: ConfirmSession | undefined;
  #opening: Promise<ConfirmSession> | undefined;

  constructor(
    private readonly keeper: ConnectionKeeper,
    private readonly topology: Topology,
    private readonly options: ResolvedOptions,
  ) {}

  async publish(messages: readonly WireMessage[]): Promise<void> {
    if (messages.length === 0) return;
    let pending = messages.map((message) => encodeWire(message, this.options.partitions));
    const deadline = Date.now() + this.options.publishTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      let error: Error;
      try {
        const session = await this.#sessionBy(deadline);
        await this.#declare(session, pending);
        pending = await this.#send(session, pending);
        if (pending.length === 0) return;
        error = new Error('RabbitMQ did not confirm every message');
      } catch (caught) {
        if (
          caught instanceof RabbitMqClosedError ||
          caught instanceof RangeError ||
          caught instanceof PartitionCountMismatchError
        )
          throw caught;
        if (isRefused(caught)) {
          throw new RabbitMqPublishError(`RabbitMQ refused the publish: ${asError(caught).message}`, {
            cause: caught,
          });
        }
        error = asError(caught);
      }
      if (Date.now() >= deadline) {
        throw new RabbitMqPublishError(
          `${pending.length} of ${messages.length} message(s) not confirmed by RabbitMQ within ` +
            `${this.options.publishTimeoutMs} ms: ${error.message}`,
          { cause: error },
        );
      }
      this.options.onEvent({ kind: 'publish-retrying', unconfirmed: pending.length, error });
      await sleep(
        Math.min(backoffDelay(this.options.reconnect, attempt), Math.max(0, deadline - Date.now())),
        this.keeper.closing,
      );
    }
  }

  /** Closes the confirm channel. */
  async close(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    if (session?.open) await session.channel.close().catch(() => {});
  }

  /** The open confirm channel, opening one on the current connection if needed. */
  async #sessionBy(deadline: number): Promise<ConfirmSession> {
    for (;;) {
      const model = await this.keeper.whenReady(deadline);
      const current = this.#session;
      if (current?.open && current.model === model) return current;
      this.#opening ??= this.#openSession(model).finally(() => {
        this.#opening = undefined;
      });
      const session = await this.#opening;
      if (session.open) return session;
    }
  }

  async #openSession(model: ChannelModel): Promise<ConfirmSession> {
    const channel = await model.createConfirmChannel();
    const session: ConfirmSession = { model, channel, declared: new Set(), open: true };
    channel.on('error', () => {
      // Reported through the failed publishes, which are retried.
    });
    channel.on('close', () => {
      session.open = false;
      if (this.#session === session) this.#session = undefined;
    });
    this.#session = session;
    return session;
  }

  async #declare(session: ConfirmSession, messages: readonly EncodedMessage[]): Promise<void> {
    for (const channel of new Set(messages.map((m) => m.wire.channel))) {
      if (session.declared.has(channel)) continue;
      await this.topology.declareChannel(session.channel, channel);
      session.declared.add(channel);
    }
  }

  /**
   * Sends every message, waits for all confirms, and returns the messages from the first one
   * RabbitMQ did not confirm onwards, in their order. Sending that whole tail again (not only the
   * unconfirmed ones) keeps each key's order: RabbitMQ stores what a channel sends in order, so
   * the first copy of every message still arrives in the order published, and consumers skip
   * the second copies by message id.
   */
  async #send(session: ConfirmSession, messages: readonly EncodedMessage[]): Promise<EncodedMessage[]> {
    const { channel } = session;
    const confirmed = new Array<boolean>(messages.length).fill(false);
    const confirms: Array<Promise<void>> = [];
    let unsendable: RangeError | undefined;
    for (const [index, message] of messages.entries()) {
      if (!session.open || unsendable) break;
      let hasRoom = true;
      confirms.push(
        new Promise<void>((resolve) => {
          try {
            const exchange = this.topology.channelExchange(message.wire.channel);
            hasRoom = channel.publish(
              exchange,
              message.routingKey,
              message.content,
              message.options,
              (err) => {
                confirmed[index] = !err;
                resolve();
              },
            );
          } catch (error) {
            // A message amqplib cannot encode fails the call; a closed channel is retried.
            if (error instanceof RangeError) unsendable ??= error;
            resolve();
          }
        }),
      );
      if (!hasRoom) await drained(session);
    }
    await Promise.all(confirms);
    if (unsendable) throw unsendable;
    const first = confirmed.indexOf(false);
    return first < 0 ? [] : messages.slice(first);
  }
}

/** Whether RabbitMQ refused an operation for a reason that retrying cannot fix (access, a conflicting declaration). */
function isRefused(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 403 || code === 406;
}

/** Resolves when the channel's write buffer has drained or the channel closed. */
function drained(session: ConfirmSession): Promise<void> {
  if (!session.open) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      session.channel.off('drain', done);
      session.channel.off('close', done);
      resolve();
    };
    session.channel.once('drain', done);
    session.channel.once('close', done);
  });
}
