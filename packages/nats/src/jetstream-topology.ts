import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { consumerName, deadLetterStream, messageSubject, streamName, streamSubjects } from './naming.js';
import type { ResolvedNatsOptions } from './nats.options.js';

const PARTITIONS_NOTE = /partitions=(\d+)/;

/** Whether `error` is JetStream's answer that a stream or consumer does not exist. */
export function isNotFound(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamNotFound || error.code === JetStreamApiCodes.ConsumerNotFound)
  );
}

/**
 * Creates the streams and consumers the broker needs, once per process and on demand: a file
 * stream per channel family, a durable pull consumer per (group, channel, partition), and the
 * dead-letter stream. Existing ones are reused; a family stream created with another partition
 * count is refused, because publishers and members would then disagree about where a key lives.
 */
export class JetStreamTopology {
  readonly #streams = new Map<string, Promise<void>>();

  constructor(
    private readonly jsm: JetStreamManager,
    private readonly options: ResolvedNatsOptions,
  ) {}

  /** Makes sure the family stream of `channel` exists; cached after the first success. */
  ensureStream(channel: string): Promise<void> {
    const name = streamName(this.options.namespace, channel);
    let ready = this.#streams.get(name);
    if (!ready) {
      ready = this.#createStream(name, streamSubjects(this.options.namespace, channel), true);
      this.#streams.set(name, ready);
      ready.catch(() => this.#streams.delete(name));
    }
    return ready;
  }

  /** Forgets that a stream exists, so the next `ensureStream` checks again (after a publish failed). */
  forget(channel: string): void {
    this.#streams.delete(streamName(this.options.namespace, channel));
  }

  /** Makes sure the dead-letter stream exists. */
  ensureDeadLetterStream(): Promise<void> {
    const name = deadLetterStream(this.options.namespace);
    let ready = this.#streams.get(name);
    if (!ready) {
      ready = this.#createStream(name, [`${this.options.namespace}._dlq.>`], false);
      this.#streams.set(name, ready);
      ready.catch(() => this.#streams.delete(name));
    }
    return ready;
  }

  /**
   * Creates or updates the durable pull consumer of a group on one partition: explicit acks,
   * at most `window` unacknowledged, redelivery after `ackWaitMs` growing with JetStream's
   * back-off. The member enforces `maxDeliveries` and dead-letters with a reason; JetStream's own
   * `max_deliver`, which drops a message silently, is set well above it as a last resort (2.9
   * requires one when a back-off is set).
   * Returns the stream and consumer names.
   */
  async ensureConsumer(
    group: string,
    channel: string,
    partition: number,
  ): Promise<{ stream: string; consumer: string }> {
    const { stream, consumer: name } = this.#names(group, channel, partition);
    const wanted = this.#consumerConfig(group, channel, partition);
    try {
      const info = await this.jsm.consumers.info(stream, name);
      const c = info.config;
      const same =
        c.max_ack_pending === wanted.max_ack_pending &&
        c.max_deliver === wanted.max_deliver &&
        c.ack_wait === wanted.ack_wait &&
        JSON.stringify(c.backoff ?? []) === JSON.stringify(wanted.backoff);
      if (!same) {
        await this.jsm.consumers.update(stream, name, {
          max_ack_pending: wanted.max_ack_pending,
          max_deliver: wanted.max_deliver,
          ack_wait: wanted.ack_wait,
          backoff: wanted.backoff,
        });
      }
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.jsm.consumers.add(stream, wanted);
    }
    return { stream, consumer: name };
  }

  /**
   * Deletes the consumer of a group on one partition and creates it again, delivering from stream
   * sequence `fromSequence` on: every message from there is delivered afresh, in stream order,
   * and nothing is counted unacknowledged any more. For a partition whose server-side state no
   * longer matches what it delivers (see `PartitionWorker`); only the partition's lease holder
   * may call it. Returns the stream and consumer names.
   */
  async restartConsumer(
    group: string,
    channel: string,
    partition: number,
    fromSequence: number,
  ): Promise<{ stream: string; consumer: string }> {
    const { stream, consumer: name } = this.#names(group, channel, partition);
    try {
      await this.jsm.consumers.delete(stream, name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    await this.jsm.consumers.add(stream, {
      ...this.#consumerConfig(group, channel, partition),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSequence),
    });
    return { stream, consumer: name };
  }

  #names(group: string, channel: string, partition: number): { stream: string; consumer: string } {
    return {
      stream: streamName(this.options.namespace, channel),
      consumer: consumerName(group, channel, partition),
    };
  }

  #consumerConfig(group: string, channel: string, partition: number): Partial<ConsumerConfig> {
    const ackWait = this.options.ackWaitMs;
    return {
      durable_name: consumerName(group, channel, partition),
      filter_subject: messageSubject(this.options.namespace, channel, partition),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ackWait),
      max_deliver: 2 * this.options.maxDeliveries + 10,
      max_ack_pending: this.options.window,
      backoff: [1, 2, 4, 8].map((factor) => nanos(ackWait * factor)),
      description: `ferry group=${group} channel=${channel} partition=${partition}`,
    };
  }

  async #createStream(name: string, subjects: string[], partitioned: boolean): Promise<void> {
    const o = this.options;
    const description = partitioned ? `ferry partitions=${o.partitions}` : 'ferry dead letters';
    try {
      const info = await this.jsm.streams.info(name);
      this.#checkPartitions(name, info.config.description);
      return;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    try {
      await this.jsm.streams.add({
        name,
        subjects,
        description,
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        max_age: nanos(o.retentionMs),
        duplicate_window: nanos(Math.min(o.duplicateWindowMs, o.retentionMs)),
        num_replicas: o.replicas,
      });
    } catch (error) {
      // Another process may have created it first; accept it if it is compatible.
      const info = await this.jsm.streams.info(name).catch(() => {
        throw error;
      });
      this.#checkPartitions(name, info.config.description);
    }
  }

  #checkPartitions(name: string, description: string | undefined): void {
    const found = description?.match(PARTITIONS_NOTE)?.[1];
    if (found !== undefined && Number(found) !== this.options.partitions) {
      throw new Error(
        `stream ${name} was created with partitions=${found} but this broker has partitions=${this.options.partitions}; every publisher and member must use the same NatsBrokerOptions.partitions`,
      );
    }
  }
}
