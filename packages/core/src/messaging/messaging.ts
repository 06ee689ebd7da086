import type { Outbox } from '../ports/outbox.port.js';
import type { Message, MessageHeaders, ReplyOutcome } from './message.js';
import { newMessageId } from './message-id.js';
import type { MessageType, PayloadOf } from './message-type.js';
import { validateWith } from './standard-schema.js';

/** Headers a sender may set on any message it sends. */
export interface SendContext {
  /** The message being handled, if any: sets causation, correlation and trace context from it. */
  readonly causedBy?: Message | undefined;
  readonly correlationId?: string | undefined;
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
  readonly extra?: Readonly<Record<string, string>> | undefined;
}

/** An event with its type, ready to publish. */
export interface EventToPublish<T extends MessageType<'event'> = MessageType<'event'>> {
  readonly type: T;
  readonly payload: PayloadOf<T>;
}

/** Pairs an event type with its payload, type-checked. */
export function event<T extends MessageType<'event'>>(type: T, payload: PayloadOf<T>): EventToPublish<T> {
  return { type, payload };
}

/** Options of {@link Messaging.sendCommand}. */
export interface CommandOptions extends SendContext {
  /** Destination channel; default the command type's channel. */
  readonly channel?: string | undefined;
  /** Channel the reply goes to. */
  readonly replyTo?: string | undefined;
  /** Default: the correlation id, else the new message's id. */
  readonly partitionKey?: string | undefined;
}

/**
 * Builds a message of `type`, checking the payload against its schema: a bad payload throws
 * {@link SchemaValidationError} before anything is written.
 */
export async function buildMessage<T extends MessageType>(
  type: T,
  payload: PayloadOf<T>,
  headers: Omit<MessageHeaders, 'kind' | 'type' | 'createdAt' | 'partitionKey'> & { partitionKey?: string },
  context: SendContext = {},
  now: Date = new Date(),
): Promise<Message<PayloadOf<T>>> {
  const ms = now.getTime();
  const id = newMessageId(ms);
  const valid = await validateWith(type.schema, type.type, payload);
  const cause = context.causedBy?.headers;
  // Spelled out rather than spread: this runs for every message sent, and each spread allocates.
  return {
    id,
    headers: {
      kind: type.kind,
      type: type.type,
      destination: headers.destination,
      partitionKey: headers.partitionKey ?? id,
      createdAt: isoTime(ms),
      correlationId: headers.correlationId ?? context.correlationId ?? cause?.correlationId,
      causationId: headers.causationId ?? context.causedBy?.id,
      replyTo: headers.replyTo,
      outcome: headers.outcome,
      traceparent: headers.traceparent ?? context.traceparent ?? cause?.traceparent,
      tracestate: headers.tracestate ?? context.tracestate ?? cause?.tracestate,
      extra: mergeExtra(headers.extra, context.extra),
    },
    payload: valid,
  };
}

/** Both sets of extra headers, the context's winning; no copy when only one is given. */
function mergeExtra(
  own: Readonly<Record<string, string>> | undefined,
  fromContext: Readonly<Record<string, string>> | undefined,
): Readonly<Record<string, string>> | undefined {
  if (!fromContext || fromContext === own) return own;
  return own ? { ...own, ...fromContext } : fromContext;
}

let isoMs = Number.NaN;
let iso = '';

/** ISO-8601 time of `ms`, formatted once per millisecond: a busy sender stamps many messages in each. */
function isoTime(ms: number): string {
  if (ms !== isoMs) {
    isoMs = ms;
    iso = new Date(ms).toISOString();
  }
  return iso;
}

/**
 * The typed messaging API over an outbox: publish an aggregate's events, send a command with
 * reply-to, reply with success or failure. Every call takes the caller's transaction, so the
 * messages commit or roll back with the business change.
 */
export class Messaging<Tx> {
  constructor(
    private readonly outbox: Outbox<Tx>,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Publishes events of one aggregate on its channel, keyed by the aggregate id so they stay in order. */
  async publishEvents(
    tx: Tx,
    aggregate: { readonly type: string; readonly id: string },
    events: readonly EventToPublish[],
    context: SendContext = {},
  ): Promise<Message[]> {
    const messages: Message[] = [];
    for (const { type, payload } of events) {
      const channel = type.channel ?? aggregate.type;
      messages.push(
        await buildMessage(
          type,
          payload,
          {
            destination: channel,
            partitionKey: aggregate.id,
            extra: { aggregateType: aggregate.type, aggregateId: aggregate.id },
          },
          context,
          this.clock(),
        ),
      );
    }
    await this.outbox.append(tx, messages);
    return messages;
  }

  /** Sends a command to its handling service's channel. */
  async sendCommand<T extends MessageType<'command'>>(
    tx: Tx,
    type: T,
    payload: PayloadOf<T>,
    options: CommandOptions = {},
  ): Promise<Message<PayloadOf<T>>> {
    const destination = options.channel ?? type.channel;
    if (!destination) throw new Error(`${type.type} has no channel: pass options.channel`);
    const correlationId = options.correlationId ?? options.causedBy?.headers.correlationId;
    const message = await buildMessage(
      type,
      payload,
      {
        destination,
        replyTo: options.replyTo,
        correlationId,
        partitionKey: options.partitionKey ?? correlationId,
      },
      options,
      this.clock(),
    );
    await this.outbox.append(tx, [message]);
    return message;
  }

  /** Replies to a command on its reply-to channel, with the command's correlation id. */
  async reply<T extends MessageType<'reply'>>(
    tx: Tx,
    command: Message,
    outcome: ReplyOutcome,
    type: T,
    payload: PayloadOf<T>,
  ): Promise<Message<PayloadOf<T>>> {
    const replyTo = command.headers.replyTo;
    if (!replyTo) throw new Error(`command ${command.headers.type} (${command.id}) has no reply-to channel`);
    const correlationId = command.headers.correlationId ?? command.id;
    const message = await buildMessage(
      type,
      payload,
      { destination: replyTo, correlationId, partitionKey: correlationId, outcome },
      { causedBy: command, extra: command.headers.extra },
      this.clock(),
    );
    await this.outbox.append(tx, [message]);
    return message;
  }

  /** Sends messages already built. */
  async send(tx: Tx, messages: readonly Message[]): Promise<void> {
    await this.outbox.append(tx, messages);
  }
}
