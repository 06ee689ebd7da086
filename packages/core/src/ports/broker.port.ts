import type { WireMessage } from '../messaging/message.js';

/**
 * A message broker as Ferry needs it. Every adapter (memory, PostgreSQL, NATS JetStream,
 * RabbitMQ) passes the same contract suite, `testBroker` in `@ferry/testing`.
 *
 * Guarantees an adapter gives:
 * - `publish` resolves only once the broker holds every message durably (its acknowledgement).
 * - At-least-once delivery to each consumer group subscribed to a channel (publish-subscribe
 *   across groups, point-to-point within a group: one member handles each message).
 * - Per-key order within a group: a message is not handed to the handler before the handler
 *   has settled every earlier message with the same partition key.
 * - A message whose handler rejects, or whose member dies before settling it, is delivered again.
 */
export interface Broker {
  /** Adapter name, for logs and metrics (`memory`, `postgres`, `nats`, `rabbitmq`). */
  readonly name: string;
  /** Publishes messages; resolves when the broker has acknowledged all of them. */
  publish(messages: readonly WireMessage[]): Promise<void>;
  /** Joins `spec.group` on `spec.channel`; the handler's promise settles each delivery. */
  subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription>;
  /** Whether the broker connection is usable (for readiness checks). */
  isReady(): boolean;
  /** Closes subscriptions and connections. */
  close(): Promise<void>;
}

/** Which messages a subscription receives and how many keys it works on at once. */
export interface SubscriptionSpec {
  readonly channel: string;
  readonly group: string;
  /** Most partition keys handled at once by this member (default 16). */
  readonly concurrency?: number;
}

/** One delivery of a message to a group member. */
export interface Delivery {
  readonly message: WireMessage;
  /** 1 on first delivery, more when the broker redelivers. */
  readonly deliveryCount: number;
  /**
   * Times the message was handed to a consumer that then stopped (crashed, or lost its lease)
   * before settling it, where the broker can tell (the PostgreSQL broker does). A message that
   * kills every process that handles it comes back with a growing count; the consumer
   * dead-letters it past `maxAbandoned` instead of running it again.
   */
  readonly abandoned?: number;
}

/** Resolve to acknowledge; reject to have the message delivered again later. */
export type DeliveryHandler = (delivery: Delivery) => Promise<void>;

/** A live subscription. */
export interface Subscription {
  /** Stops taking messages, waits for handlers in flight, releases unsettled ones. */
  close(): Promise<void>;
}

/** The default number of partition keys a member handles at once. */
export const DEFAULT_CONCURRENCY = 16;
