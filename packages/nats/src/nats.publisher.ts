import type { WireMessage } from '@ferry/core';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { JetStreamTopology } from './jetstream-topology.js';
import { messageSubject } from './naming.js';
import type { ResolvedNatsOptions } from './nats.options.js';
import { partitionOf } from './partitioning.js';
import { encodeWire } from './wire-codec.js';

/**
 * Publishes batches to JetStream with many publishes in flight and waits for every stream ack.
 * Order: publishes leave in the batch's order over one connection, so JetStream stores messages
 * of a key in that order. After the first failure no further publish of the batch is sent, so a
 * later message of a key is never stored behind an earlier one that failed and gets retried;
 * the caller retries the batch and JetStream's de-duplication drops the ones already stored.
 */
export class NatsPublisher {
  constructor(
    private readonly js: JetStreamClient,
    private readonly topology: JetStreamTopology,
    private readonly options: ResolvedNatsOptions,
  ) {}

  /** Resolves once JetStream has stored (or recognised as duplicates) all `messages`. */
  async publish(messages: readonly WireMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const channels = new Set(messages.map((m) => m.channel));
    await Promise.all([...channels].map((channel) => this.topology.ensureStream(channel)));
    const { namespace, partitions, publishWindow, requestTimeoutMs } = this.options;
    let failure: unknown;
    let inFlight = 0;
    let slot: (() => void) | undefined;
    const settled: Array<Promise<void>> = [];
    for (const message of messages) {
      if (failure !== undefined) break;
      if (inFlight >= publishWindow) {
        await new Promise<void>((resolve) => {
          slot = resolve;
        });
        if (failure !== undefined) break;
      }
      const { headers, data } = encodeWire(message);
      const subject = messageSubject(
        namespace,
        message.channel,
        partitionOf(message.partitionKey, partitions),
      );
      inFlight++;
      settled.push(
        this.js
          .publish(subject, data, { headers, timeout: requestTimeoutMs })
          .then(
            () => undefined,
            (error: unknown) => {
              failure ??= error;
            },
          )
          .finally(() => {
            inFlight--;
            const wake = slot;
            slot = undefined;
            wake?.();
          }),
      );
    }
    await Promise.all(settled);
    if (failure !== undefined) {
      // A stream deleted behind our back answers with "no responders": check it again next time.
      for (const channel of channels) this.topology.forget(channel);
      throw new Error(`publish to JetStream failed: ${describe(failure)}`, { cause: failure });
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
