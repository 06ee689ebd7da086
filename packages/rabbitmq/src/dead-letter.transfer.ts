import type { DeadLetterStore } from '@ferry/core';
import type { ChannelModel, GetMessage } from 'amqplib';
import type { TopologyNames } from './names.js';
import { withChannel } from './topology.js';
import { decodeWire } from './wire-codec.js';

/**
 * Moves what RabbitMQ dead-lettered (a partition queue's delivery limit reached: members kept
 * closing or dying before settling the message) into the application's dead-letter store, where
 * it is listed and replayed like the consumer's own dead letters. Each message is acknowledged
 * only after the store has it; the store keeps one entry per group and message id, so a
 * transfer cut short and run again adds nothing twice. Returns how many messages moved.
 */
export async function transferDeadLetters(
  model: ChannelModel,
  names: TopologyNames,
  store: DeadLetterStore,
  options: { readonly limit: number; readonly deliveryLimit: number },
): Promise<number> {
  return withChannel(model, async (channel) => {
    let moved = 0;
    while (moved < options.limit) {
      const got = await channel.get(names.deadLetter(), { noAck: false });
      if (got === false) break;
      try {
        await store.add(deadLetterOf(got, names, options.deliveryLimit));
      } catch (error) {
        channel.nack(got, false, true);
        throw error;
      }
      channel.ack(got);
      moved++;
    }
    return moved;
  });
}

function deadLetterOf(got: GetMessage, names: TopologyNames, deliveryLimit: number) {
  const headers = (got.properties.headers ?? {}) as Record<string, unknown>;
  const queue = String(headers['x-first-death-queue'] ?? '');
  const reason = String(headers['x-first-death-reason'] ?? 'unknown');
  const origin = names.parsePartitionQueue(queue);
  const message = decodeWire(origin?.channel ?? '', got);
  return {
    group: origin?.group ?? queue,
    message,
    reason: `broker: ${reason === 'delivery_limit' ? 'delivery limit reached' : reason} in queue ${queue}`,
    // A quorum queue dead-letters a message on the delivery after its limit.
    attempts: deliveryLimit + 1,
  };
}
