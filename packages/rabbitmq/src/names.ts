/** RabbitMQ limits exchange and queue names, and routing keys, to 255 bytes (AMQP short strings). */
const MAX_SHORT_STRING_BYTES = 255;

/**
 * Suffix of the channel exchange's name. Channel exchanges were fanout exchanges named
 * `<ns>:<channel>` (feeding consistent-hash exchanges); they are direct exchanges now, under a
 * new name, so that an old exchange left on a server does not clash with the new type.
 */
const CHANNEL_EXCHANGE_SUFFIX = '.v2';

/**
 * Names of the exchanges and queues the adapter declares. Every name starts with the namespace,
 * and its parts are joined with `:`, which channel, group and namespace names may not contain,
 * so that no two (channel, group) pairs ever map to the same name.
 */
export class TopologyNames {
  constructor(readonly namespace: string) {
    checkPart('namespace', namespace);
  }

  /** The direct exchange a channel's messages are published to, routed by partition number. */
  channelExchange(channel: string): string {
    checkPart('channel', channel);
    return this.#name(`${this.namespace}:${channel}${CHANNEL_EXCHANGE_SUFFIX}`);
  }

  /**
   * The queue that records a channel's partition count, in its `x-max-length` argument, which
   * RabbitMQ compares on every declaration. It is bound to nothing and never holds a message.
   */
  partitionCountQueue(channel: string): string {
    return this.#name(`${this.channelExchange(channel)}:partitions`);
  }

  /** Partition queue `index` of a group. */
  partitionQueue(channel: string, group: string, index: number): string {
    return this.#name(`${this.#group(channel, group)}:${index}`);
  }

  /** The queue a group's members all consume from (it never holds messages) to count the members. */
  rosterQueue(channel: string, group: string): string {
    return this.#name(`${this.#group(channel, group)}:members`);
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

  #group(channel: string, group: string): string {
    checkPart('channel', channel);
    checkPart('group', group);
    return `${this.namespace}:${channel}:${group}`;
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
