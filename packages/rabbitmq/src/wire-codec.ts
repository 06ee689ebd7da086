import type { WireMessage } from '@ferry/core';
import type { ConsumeMessage, Message, Options } from 'amqplib';
import { partitionOf, partitionRoutingKey } from './partitioning.js';

/** AMQP header carrying the partition key (the routing key is the key's partition number). */
export const PARTITION_KEY_HEADER = 'ferry-partition-key';
/** Prefix under which a wire header travels when its own name is reserved (see {@link encodeWire}). */
const ESCAPED_PREFIX = 'ferry-h-';
/** RabbitMQ adds `x-…` headers (`x-delivery-count`, `x-death`); the adapter uses `ferry-…`. */
const RESERVED = /^(x-|ferry-)/;
const MAX_HEADER_NAME_BYTES = 255;

/** A wire message ready for `channel.publish`. */
export interface EncodedMessage {
  readonly wire: WireMessage;
  /** The number of the partition the message goes to, as a string (see {@link partitionOf}). */
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
}

/**
 * Turns a wire message into an AMQP message. Each wire header travels as an AMQP header of
 * the same name, so that tools see `traceparent`, `type` and the rest as they are; a name that
 * starts with `x-` or `ferry-` (reserved for the broker and the adapter) travels escaped as
 * `ferry-h-<name>`, so every header comes back exactly as it was sent. The routing key is the
 * partition of the message's key out of `partitions`, which the channel exchange routes to
 * every group's queue of that number.
 */
export function encodeWire(wire: WireMessage, partitions: number): EncodedMessage {
  const headers: Record<string, string> = { [PARTITION_KEY_HEADER]: wire.partitionKey };
  for (const [name, value] of Object.entries(wire.headers)) {
    const amqpName = RESERVED.test(name) ? `${ESCAPED_PREFIX}${name}` : name;
    if (Buffer.byteLength(amqpName) > MAX_HEADER_NAME_BYTES) {
      throw new RangeError(`message ${wire.id}: header name ${name.slice(0, 40)}… is too long for AMQP`);
    }
    headers[amqpName] = value;
  }
  return {
    wire,
    routingKey: partitionRoutingKey(partitionOf(wire.partitionKey, partitions)),
    content: Buffer.from(wire.body, 'utf8'),
    options: {
      messageId: wire.id,
      persistent: true,
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      headers,
    },
  };
}

/** Reads an AMQP delivery back into the wire message that was published. */
export function decodeWire(channel: string, message: Message): WireMessage {
  const amqpHeaders = (message.properties.headers ?? {}) as Record<string, unknown>;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(amqpHeaders)) {
    if (name.startsWith(ESCAPED_PREFIX)) headers[name.slice(ESCAPED_PREFIX.length)] = headerString(value);
    else if (!RESERVED.test(name)) headers[name] = headerString(value);
  }
  return {
    id: String(message.properties.messageId ?? ''),
    channel,
    partitionKey: partitionKeyOf(message),
    headers,
    body: message.content.toString('utf8'),
  };
}

/**
 * The partition key of a delivery, from its header. A message published without the adapter
 * may lack it; its routing key (the partition number) stands in, which still keeps it in order
 * with its partition.
 */
export function partitionKeyOf(message: Message): string {
  const partitionKey = (message.properties.headers as Record<string, unknown> | undefined)?.[
    PARTITION_KEY_HEADER
  ];
  return partitionKey === undefined ? message.fields.routingKey : headerString(partitionKey);
}

/**
 * How often the broker handed this message out before: a quorum queue counts returns (a member
 * that closed or died holding it) in `x-delivery-count`.
 */
export function previousDeliveries(message: ConsumeMessage): number {
  const raw = (message.properties.headers as Record<string, unknown> | undefined)?.['x-delivery-count'];
  const count = typeof raw === 'bigint' ? Number(raw) : raw;
  return typeof count === 'number' && Number.isFinite(count) && count > 0 ? count : 0;
}

function headerString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return String(value);
}
