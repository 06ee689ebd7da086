import { positiveInteger, type RetryPolicy } from '@ferry/core';

/** Something that happened to the broker connection or a consumer, for logs and metrics. */
export type RabbitMqEvent =
  | { readonly kind: 'connection-lost'; readonly error?: Error | undefined }
  | {
      readonly kind: 'reconnect-failed';
      readonly attempt: number;
      readonly delayMs: number;
      readonly error: Error;
    }
  | { readonly kind: 'reconnected'; readonly attempt: number }
  | { readonly kind: 'consumer-failed'; readonly queue: string; readonly error: Error }
  | { readonly kind: 'publish-retrying'; readonly unconfirmed: number; readonly error: Error }
  | { readonly kind: 'blocked'; readonly reason: string }
  | { readonly kind: 'unblocked' };

/** How to reach RabbitMQ and how the adapter lays out and consumes its queues. */
export interface RabbitMqBrokerOptions {
  /** `amqp://user:password@host:5672/vhost`; a `heartbeat` query parameter overrides the default 10 s. */
  readonly url: string;
  /** Prefix of every exchange and queue name (default `ferry`); one per environment sharing a vhost. */
  readonly namespace?: string;
  /**
   * Partitions of every channel this broker publishes to or subscribes on, and so partition
   * queues per consumer group (default 8). A message's partition is FNV-1a of its partition key
   * modulo this number. Fixed when a channel or group is first declared: publishing or
   * subscribing with a different number fails with `PartitionCountMismatchError`, because moving
   * keys between partitions would break their order.
   */
  readonly partitions?: number;
  /** Unacknowledged messages one member holds per partition queue (default 32). */
  readonly prefetch?: number;
  /**
   * Times a quorum queue hands out a message that is never settled (its member closed or died)
   * before it dead-letters it to `<namespace>:dead-letter` (default 20). A backstop for messages
   * that crash their consumer; handler failures are retried and dead-lettered by the consumer.
   */
  readonly deliveryLimit?: number;
  /**
   * How often a member checks whether it holds more than its share of the group's busy
   * partitions and hands the excess to other members (default 5 s; 0 turns it off, leaving
   * every partition with the member that joined it first).
   */
  readonly rebalanceIntervalMs?: number;
  /** How long `publish` keeps trying through an outage before it fails (default 30 s). */
  readonly publishTimeoutMs?: number;
  /** Delays between reconnection attempts (default 100 ms doubling to 5 s, with jitter). */
  readonly reconnect?: Partial<RetryPolicy>;
  /** Delays before a rejected message is handed to its handler again (default 20 ms doubling to 5 s). */
  readonly redelivery?: Partial<RetryPolicy>;
  /** Shown in RabbitMQ's connection list (default `ferry`). */
  readonly connectionName?: string;
  /** Receives connection and consumer events (default: failures are written with `console.warn`). */
  readonly onEvent?: (event: RabbitMqEvent) => void;
}

/** Options with every default filled in. */
export interface ResolvedOptions {
  readonly url: string;
  readonly namespace: string;
  readonly partitions: number;
  readonly prefetch: number;
  readonly deliveryLimit: number;
  readonly rebalanceIntervalMs: number;
  readonly publishTimeoutMs: number;
  readonly reconnect: RetryPolicy;
  readonly redelivery: RetryPolicy;
  readonly connectionName: string;
  readonly onEvent: (event: RabbitMqEvent) => void;
}

const DEFAULT_HEARTBEAT_S = 10;

/** Fills in defaults and rejects options that cannot work, naming the option. */
export function resolveOptions(options: RabbitMqBrokerOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    url: withHeartbeat(options.url),
    namespace: options.namespace ?? 'ferry',
    partitions: options.partitions ?? 8,
    prefetch: options.prefetch ?? 32,
    deliveryLimit: options.deliveryLimit ?? 20,
    rebalanceIntervalMs: options.rebalanceIntervalMs ?? 5_000,
    publishTimeoutMs: options.publishTimeoutMs ?? 30_000,
    reconnect: {
      maxAttempts: Infinity,
      initialDelayMs: 100,
      maxDelayMs: 5_000,
      multiplier: 2,
      ...options.reconnect,
    },
    redelivery: {
      maxAttempts: Infinity,
      initialDelayMs: 20,
      maxDelayMs: 5_000,
      multiplier: 2,
      ...options.redelivery,
    },
    connectionName: options.connectionName ?? 'ferry',
    onEvent: options.onEvent ?? warnOnFailure,
  };
  positiveInteger(resolved.partitions, 'partitions');
  positiveInteger(resolved.prefetch, 'prefetch');
  positiveInteger(resolved.deliveryLimit, 'deliveryLimit');
  if (!(resolved.rebalanceIntervalMs >= 0)) throw new RangeError('rebalanceIntervalMs must be 0 or more');
  if (!(resolved.publishTimeoutMs > 0)) throw new RangeError('publishTimeoutMs must be positive');
  return resolved;
}

function withHeartbeat(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RangeError('url is not a valid amqp:// or amqps:// URL');
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    throw new RangeError(`url must start with amqp:// or amqps://, got ${parsed.protocol}//`);
  }
  if (!parsed.searchParams.has('heartbeat'))
    parsed.searchParams.set('heartbeat', String(DEFAULT_HEARTBEAT_S));
  return parsed.toString();
}

function warnOnFailure(event: RabbitMqEvent): void {
  if (event.kind === 'reconnected' || event.kind === 'unblocked') return;
  const error = 'error' in event && event.error ? `: ${event.error.message}` : '';
  console.warn(`[ferry/rabbitmq] ${event.kind}${error}`);
}
