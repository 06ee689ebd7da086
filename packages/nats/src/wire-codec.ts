import { deduplicationId, type WireMessage } from '@ferry/core';
import { type MsgHdrs, headers as natsHeaders } from '@nats-io/transport-node';

/**
 * How a {@link WireMessage} travels as a NATS message: the body is the payload, byte for byte;
 * the id, channel and partition key are `Ferry-Id`, `Ferry-Channel` and `Ferry-Key`; each Ferry
 * header `name` is `Ferry-H-<name>`. Names and values are percent-encoded, because NATS header
 * names are printable ASCII without `:` and the client trims values and rejects line breaks.
 * `Nats-Msg-Id` carries {@link deduplicationId}, so JetStream stores a retried publish once
 * while a replayed dead letter (a higher `replayCount`) is accepted as new.
 */

const ID = 'Ferry-Id';
const CHANNEL = 'Ferry-Channel';
const KEY = 'Ferry-Key';
const HEADER_PREFIX = 'Ferry-H-';
const MSG_ID = 'Nats-Msg-Id';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The NATS headers and payload of a wire message. */
export function encodeWire(message: WireMessage): { headers: MsgHdrs; data: Uint8Array } {
  const h = natsHeaders();
  h.set(MSG_ID, encodeURIComponent(deduplicationId(message)));
  h.set(ID, encodeURIComponent(message.id));
  h.set(CHANNEL, encodeURIComponent(message.channel));
  h.set(KEY, encodeURIComponent(message.partitionKey));
  for (const [name, value] of Object.entries(message.headers)) {
    h.set(`${HEADER_PREFIX}${encodeURIComponent(name)}`, encodeURIComponent(value));
  }
  return { headers: h, data: encoder.encode(message.body) };
}

/**
 * The wire message a NATS message carries. A message published by something other than Ferry
 * still decodes (its id falls back to `fallbackId`), so that the consumer can dead-letter it
 * with a reason instead of losing it.
 */
export function decodeWire(
  h: MsgHdrs | undefined,
  data: Uint8Array,
  fallback: { id: string; channel: string },
): WireMessage {
  const read = (name: string): string | undefined => {
    const value = h?.get(name);
    return value ? decodeURIComponent(value) : undefined;
  };
  const headers: Record<string, string> = {};
  for (const name of h?.keys() ?? []) {
    if (!name.startsWith(HEADER_PREFIX)) continue;
    headers[decodeURIComponent(name.slice(HEADER_PREFIX.length))] = decodeURIComponent(h?.get(name) ?? '');
  }
  return {
    id: read(ID) ?? fallback.id,
    channel: read(CHANNEL) ?? fallback.channel,
    partitionKey: read(KEY) ?? '',
    headers,
    body: decoder.decode(data),
  };
}
