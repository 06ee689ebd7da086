import { deduplicationId, type WireMessage } from '@ferry/core';
import { DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import type { JetStreamTopology } from './jetstream-topology.js';
import { deadLetterStream, deadLetterSubject, encodeToken } from './naming.js';
import type { ResolvedNatsOptions } from './nats.options.js';
import { decodeWire, encodeWire } from './wire-codec.js';

const GROUP = 'Ferry-Dead-Letter-Group';
const REASON = 'Ferry-Dead-Letter-Reason';
const DELIVERIES = 'Ferry-Dead-Letter-Deliveries';

/** A message the broker gave up on, as stored in the dead-letter stream. */
export interface NatsDeadLetter {
  readonly group: string;
  readonly message: WireMessage;
  readonly reason: string;
  /** Deliveries made before giving up. */
  readonly deliveries: number;
  /** When it was dead-lettered. */
  readonly at: Date;
}

/**
 * Stores a message the broker gives up on in the dead-letter stream, with the group and the
 * reason, before the original is terminated. The `Nats-Msg-Id` is the message's de-duplication id
 * plus the group, so a retried dead-lettering stores it once.
 */
export async function publishDeadLetter(
  js: JetStreamClient,
  topology: JetStreamTopology,
  options: ResolvedNatsOptions,
  entry: { group: string; message: WireMessage; reason: string; deliveries: number },
): Promise<void> {
  await topology.ensureDeadLetterStream();
  const { headers, data } = encodeWire(entry.message);
  headers.set('Nats-Msg-Id', encodeURIComponent(`${deduplicationId(entry.message)}:dlq:${entry.group}`));
  headers.set(GROUP, encodeURIComponent(entry.group));
  headers.set(REASON, encodeURIComponent(entry.reason));
  headers.set(DELIVERIES, String(entry.deliveries));
  const subject = deadLetterSubject(options.namespace, entry.group, entry.message.channel);
  await js.publish(subject, data, { headers, timeout: options.requestTimeoutMs });
}

/** Reads the dead letters of `group` (or of every group), oldest first. */
export async function readDeadLetters(
  js: JetStreamClient,
  topology: JetStreamTopology,
  options: ResolvedNatsOptions,
  group?: string,
): Promise<NatsDeadLetter[]> {
  await topology.ensureDeadLetterStream();
  const ns = options.namespace;
  const filter = group === undefined ? `${ns}._dlq.>` : `${ns}._dlq.${encodeToken(group)}.>`;
  const consumer = await js.consumers.get(deadLetterStream(ns), {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.All,
  });
  const found: NatsDeadLetter[] = [];
  for (;;) {
    const msg = await consumer.next({ expires: 1000 });
    if (!msg) break;
    const h = msg.headers;
    found.push({
      group: decodeURIComponent(h?.get(GROUP) ?? ''),
      message: decodeWire(h, msg.data, { id: `dlq:${msg.seq}`, channel: '' }),
      reason: decodeURIComponent(h?.get(REASON) ?? ''),
      deliveries: Number(h?.get(DELIVERIES) ?? '0'),
      at: msg.time,
    });
    if (msg.info.pending === 0) break;
  }
  return found;
}
