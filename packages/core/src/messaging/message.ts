import { isMessageId } from './message-id.js';

/**
 * Messages as the book defines them: a header (metadata) and a body (the payload). Ferry's
 * headers name what a message is (kind, type), where it goes (destination, partition key) and
 * how it relates to others (correlation, causation, reply-to, trace context).
 */

/** What a message asks of its receiver. */
export type MessageKind = 'command' | 'reply' | 'event' | 'document';

export const MESSAGE_KINDS: readonly MessageKind[] = ['command', 'reply', 'event', 'document'];

/** Outcome a reply carries. */
export type ReplyOutcome = 'success' | 'failure';

/** The headers every Ferry message carries; `extra` holds anything else, all strings. */
export interface MessageHeaders {
  readonly kind: MessageKind;
  /** Message type, e.g. `OrderCreated`; it selects the schema and the handler. */
  readonly type: string;
  /** The channel the message is sent to. */
  readonly destination: string;
  /** Messages with the same key are handled in order; usually an aggregate id. */
  readonly partitionKey: string;
  /** ISO-8601 time the message was created. */
  readonly createdAt: string;
  /** Ties a conversation together (a saga id, a request id). */
  readonly correlationId?: string | undefined;
  /** The id of the message that caused this one. */
  readonly causationId?: string | undefined;
  /** Channel a command's reply goes to. */
  readonly replyTo?: string | undefined;
  /** For replies: whether the command succeeded. */
  readonly outcome?: ReplyOutcome | undefined;
  /** W3C trace context. */
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
  /** Any other header, e.g. the principal a command acts for. */
  readonly extra?: Readonly<Record<string, string>> | undefined;
}

/** A decoded, validated message. */
export interface Message<P = unknown> {
  /** Unique and time-sortable (UUIDv7). */
  readonly id: string;
  readonly headers: MessageHeaders;
  readonly payload: P;
}

/**
 * A message as brokers carry it: string headers and a JSON body. Brokers see only this shape,
 * so a malformed message still travels and can be dead-lettered with its reason.
 */
export interface WireMessage {
  readonly id: string;
  readonly channel: string;
  readonly partitionKey: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const STANDARD_HEADERS = [
  'kind',
  'type',
  'destination',
  'partitionKey',
  'createdAt',
  'correlationId',
  'causationId',
  'replyTo',
  'outcome',
  'traceparent',
  'tracestate',
] as const;

/** Turns a message into its wire form. */
export function toWire(message: Message): WireMessage {
  const h = message.headers;
  const headers: Record<string, string> = {};
  if (h.extra) for (const name in h.extra) headers[name] = h.extra[name]!;
  for (let i = 0; i < STANDARD_HEADERS.length; i++) {
    const name = STANDARD_HEADERS[i]!;
    const value = h[name];
    if (value !== undefined) headers[name] = value;
  }
  return {
    id: message.id,
    channel: h.destination,
    partitionKey: h.partitionKey,
    headers,
    body: JSON.stringify(message.payload),
  };
}

/** Why a wire message could not be read; it goes to the dead-letter channel with this reason. */
export class MalformedMessageError extends Error {
  override readonly name = 'MalformedMessageError';
}

/**
 * Reads a wire message's headers and body, or throws {@link MalformedMessageError} naming what
 * is wrong (not JSON, a missing or invalid header). It does not check the payload's schema.
 */
export function fromWire(wire: WireMessage): Message {
  if (!isMessageId(wire.id)) throw new MalformedMessageError(`message id is not a UUID: ${wire.id}`);
  const h = wire.headers;
  const missing = ['kind', 'type', 'createdAt'].filter((name) => !h[name]);
  if (missing.length > 0) throw new MalformedMessageError(`missing header(s): ${missing.join(', ')}`);
  const kind = h.kind as MessageKind;
  if (!MESSAGE_KINDS.includes(kind)) throw new MalformedMessageError(`invalid kind header: ${h.kind}`);
  if (kind === 'reply' && h.outcome !== 'success' && h.outcome !== 'failure') {
    throw new MalformedMessageError(`reply ${h.type} has no valid outcome header`);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(wire.body);
  } catch (error) {
    throw new MalformedMessageError(`body is not JSON: ${(error as Error).message}`);
  }
  const extra: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    if (!(STANDARD_HEADERS as readonly string[]).includes(name)) extra[name] = value;
  }
  return {
    id: wire.id,
    headers: {
      kind,
      type: h.type!,
      destination: h.destination ?? wire.channel,
      partitionKey: h.partitionKey ?? wire.partitionKey,
      createdAt: h.createdAt!,
      correlationId: h.correlationId,
      causationId: h.causationId,
      replyTo: h.replyTo,
      outcome: h.outcome as ReplyOutcome | undefined,
      traceparent: h.traceparent,
      tracestate: h.tracestate,
      extra: Object.keys(extra).length > 0 ? extra : undefined,
    },
    payload,
  };
}
