import { createHash } from 'node:crypto';

/** RabbitMQ limits exchange and queue names, and routing keys, to 255 bytes (AMQP short strings). */
const MAX_SHORT_STRING_BYTES = 255;

/**
 * Names of the exchanges and queues the adapter declares. Every name starts with the namespace,
 * and its parts are joined with `:`, which channel, group and namespace names may not contain,
 * so that no two (channel, group) pairs ever map to the same name.
 */
export class TopologyNames {
  constructor(readonly namespace: string) {
    checkPart('namespace', namespace);
  }

  /** The fanout exchange a channel's messages are published to. */
  channelExchange(channel: string): string {
    checkPart('channel', channel);
    return this.#name(`${this.namespace}:${channel}`);
  }

  /** The consistent-hash exchange that spreads a group's copy of the channel over its partitions. */
  groupExchange(channel: string, group: string): string {
    checkPart('channel', channel);
    checkPart('group', group);
    return this.#name(`${this.namespace}:${channel}:${group}`);
  }

  /** Partition queue `index` of a group. */
  partitionQueue(channel: string, group: string, index: number): string {
    return this.#name(`${this.groupExchange(channel, group)}:${index}`);
  }

  /** The queue a group's members all consume from (it never holds messages) to count the members. */
  rosterQueue(channel: string, group: string): string {
    return this.#name(`${this.groupExchange(channel, group)}:members`);
  }

  /** The exchange and the queue that take what the broker dead-letters (the delivery-limit backstop). */
  deadLetter(): string {
    return this.#name(`${this.namespace}:dead-letter`);
  }

  /** Reads a partition queue's name back into its channel and group, or undefined if it is not one. */
  parsePartitionQueue(queue: string): { channel: string; group: string; index: number } | undefined {
    const parts = queue.split(':');
    if (parts.length !== 4 || parts[0] !== this.namespace) return undefined;
    const index = Number(parts[3]);
    if (!Number.isInteger(index) || index < 0) return undefined;
    return { channel: parts[1]!, group: parts[2]!, index };
  }

  #name(name: string): string {
    if (Buffer.byteLength(name) > MAX_SHORT_STRING_BYTES) {
      throw new RangeError(`RabbitMQ name ${name} is longer than ${MAX_SHORT_STRING_BYTES} bytes`);
    }
    return name;
  }
}

function checkPart(what: string, value: string): void {
  if (value.length === 0) throw new RangeError(`${what} name must not be empty`);
  if (value.includes(':')) throw new RangeError(`${what} name ${value} must not contain ':'`);
}

/**
 * The routing key a message is hashed on: its partition key, or a digest of it when the key is
 * longer than a routing key may be. The same key always gives the same routing key, so it always
 * lands in the same partition.
 */
export function routingKeyFor(partitionKey: string): string {
  if (Buffer.byteLength(partitionKey) <= MAX_SHORT_STRING_BYTES) return partitionKey;
  return `sha256:${createHash('sha256').update(partitionKey).digest('hex')}`;
}
