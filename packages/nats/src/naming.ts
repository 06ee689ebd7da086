import { createHash } from 'node:crypto';

/**
 * How Ferry names things on a JetStream server. Every name starts with the broker's namespace
 * (default `ferry`), so that several Ferry deployments, or test runs, share a server safely.
 *
 * | thing | name | example (`Order`, group `kitchen`) |
 * |---|---|---|
 * | subject of a message | `<ns>.<channel tokens>.<partition>` | `ferry.Order.7` |
 * | stream of a channel family (the channel's first token) | `<ns>_<family>` capturing `<ns>.<family>.>` | `ferry_Order` |
 * | durable consumer of a group on one partition | `<group>-<hash of group and channel>-p<n>` | `kitchen-3fa1c09e2b44-p7` |
 * | lease and member keys (KV bucket `<ns>_leases`) | `<consumer base>.p.<n>`, `<consumer base>.m.<member>` | `kitchen-3fa1c09e2b44.p.7` |
 * | dead letters (stream `<ns>__dlq`) | `<ns>._dlq.<group>.<channel tokens>` | `ferry._dlq.kitchen.Order` |
 *
 * Channel and group names may hold any character: each dot-separated token is encoded so that it
 * is a valid subject token (letters, digits and `-` stay, every other UTF-8 byte becomes `_` and
 * two hex digits, an empty token becomes `_`). The encoding is injective, so two channels never
 * share a subject, and it never yields `_dlq`, which keeps the dead-letter subjects apart.
 */

const NAMESPACE_PATTERN = /^[A-Za-z0-9-]+$/;
const KEEP = /^[A-Za-z0-9-]$/;
const encoder = new TextEncoder();

/** Checks a namespace: letters, digits and `-` only (it becomes a subject token and a name prefix). */
export function checkNamespace(namespace: string): string {
  if (!NAMESPACE_PATTERN.test(namespace)) {
    throw new RangeError(`namespace must be letters, digits and '-', got '${namespace}'`);
  }
  return namespace;
}

/** Encodes one subject token (see the module note). */
export function encodeToken(token: string): string {
  if (token === '') return '_';
  let out = '';
  for (const char of token) {
    if (KEEP.test(char)) {
      out += char;
      continue;
    }
    for (const byte of encoder.encode(char)) out += `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The channel's subject tokens, encoded and joined with dots. */
export function channelSubjectPart(channel: string): string {
  return channel.split('.').map(encodeToken).join('.');
}

/** The channel family: its first dot-separated token; a stream holds one family. */
export function channelFamily(channel: string): string {
  return channel.split('.')[0] ?? '';
}

/** The subject a message of `channel` in `partition` is published to. */
export function messageSubject(namespace: string, channel: string, partition: number): string {
  return `${namespace}.${channelSubjectPart(channel)}.${partition}`;
}

/** The stream holding the family of `channel`. */
export function streamName(namespace: string, channel: string): string {
  return `${namespace}_${encodeToken(channelFamily(channel))}`;
}

/** The subjects the family stream of `channel` captures. */
export function streamSubjects(namespace: string, channel: string): string[] {
  return [`${namespace}.${encodeToken(channelFamily(channel))}.>`];
}

/**
 * The base name of a group's consumers on a channel: a readable, shortened group name plus a
 * hash of the exact group and channel, so that distinct pairs never share a consumer.
 */
export function consumerBase(group: string, channel: string): string {
  const readable = encodeToken(group).replaceAll('_', '').slice(0, 32) || 'g';
  const hash = createHash('sha256').update(`${group}\u0000${channel}`).digest('hex').slice(0, 12);
  return `${readable}-${hash}`;
}

/** The durable consumer of a group on one partition of a channel. */
export function consumerName(group: string, channel: string, partition: number): string {
  return `${consumerBase(group, channel)}-p${partition}`;
}

/** The KV bucket holding partition leases and member heartbeats. */
export function leaseBucket(namespace: string): string {
  return `${namespace}_leases`;
}

/** The stream holding dead letters. */
export function deadLetterStream(namespace: string): string {
  return `${namespace}__dlq`;
}

/** The subject a group's dead letter from `channel` is stored under. */
export function deadLetterSubject(namespace: string, group: string, channel: string): string {
  return `${namespace}._dlq.${encodeToken(group)}.${channelSubjectPart(channel)}`;
}
