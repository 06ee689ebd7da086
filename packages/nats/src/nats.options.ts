import { positiveInteger } from '@ferry/core';
import { checkNamespace } from './naming.js';

/** How a {@link NatsBroker} connects and how it lays out streams, consumers and leases. */
export interface NatsBrokerOptions {
  /** Server URL(s), e.g. `nats://127.0.0.1:4222`. */
  readonly servers: string | readonly string[];
  /** Connection name shown by the server's monitoring (default `ferry`). */
  readonly name?: string;
  /**
   * Prefix of every subject, stream, consumer and bucket (default `ferry`; letters, digits, `-`).
   * Deployments or test runs that share a server use different namespaces.
   */
  readonly namespace?: string;
  /**
   * Partitions per channel (default 16). Keys hash onto partitions; a partition is owned by one
   * member of a group at a time. Every publisher and member must agree: the stream records it and
   * the broker refuses a stream that was created with another count.
   */
  readonly partitions?: number;
  /** Unacknowledged messages a member holds per partition, JetStream's `max_ack_pending` (default 64). */
  readonly window?: number;
  /**
   * How long JetStream waits for an acknowledgement before it redelivers (default 30 s). The member
   * holding a message extends it with in-progress acks while the message waits or retries, so this
   * only bounds how fast a crashed member's messages come back.
   */
  readonly ackWaitMs?: number;
  /**
   * Lifetime of a partition lease and of a member's heartbeat (default 10 s): a crashed member's
   * partitions move after at most this long. It is the TTL of the lease bucket, so the first
   * member to create the bucket sets it for everyone.
   */
  readonly leaseTtlMs?: number;
  /**
   * Deliveries (JetStream's count plus in-place retries) after which a message that still fails
   * goes to the dead-letter stream (default 25). Core's MessageConsumer retries and dead-letters on
   * its own first; this is the backstop for messages that crash members or whose handler keeps failing.
   */
  readonly maxDeliveries?: number;
  /** First delay before an in-place retry of a rejected message (default 200 ms); doubles each time. */
  readonly retryDelayMs?: number;
  /** Longest delay between in-place retries (default 30 s). */
  readonly maxRetryDelayMs?: number;
  /** Publishes in flight at once within one `publish` call (default 1,024). */
  readonly publishWindow?: number;
  /** How long a message stays in its stream (default 7 days). */
  readonly retentionMs?: number;
  /** JetStream's de-duplication window for `Nats-Msg-Id` (default 2 minutes). */
  readonly duplicateWindowMs?: number;
  /** Stream replicas (default 1; 3 on a cluster). */
  readonly replicas?: number;
  /** Timeout of one JetStream API request, publish or acknowledgement (default 5 s). */
  readonly requestTimeoutMs?: number;
  /** Delay between reconnect attempts (default 250 ms, with jitter). */
  readonly reconnectWaitMs?: number;
  /** Receives what the broker does and what goes wrong in the background, for logs and metrics. */
  readonly onEvent?: (event: NatsBrokerEvent) => void;
}

/** Something the broker did or met in the background; nothing is swallowed silently. */
export type NatsBrokerEvent =
  | { readonly kind: 'disconnected' | 'reconnected' | 'ready' }
  | {
      readonly kind: 'partition-acquired' | 'partition-released' | 'partition-lost';
      readonly group: string;
      readonly channel: string;
      readonly partition: number;
    }
  | {
      readonly kind: 'dead-lettered';
      readonly group: string;
      readonly channel: string;
      readonly messageId: string;
      readonly reason: string;
    }
  /**
   * A partition's consumer was created again, delivering from `fromSequence` (one past its ack
   * floor), because the server kept counting unacknowledged messages that never arrived (as
   * nats-server before 2.9.22 could after a restart). Messages after the floor come again in
   * stream order; those already handled are duplicates the consumer's inbox skips.
   */
  | {
      readonly kind: 'consumer-restarted';
      readonly group: string;
      readonly channel: string;
      readonly partition: number;
      readonly fromSequence: number;
      readonly reason: string;
    }
  /** A background step failed; it is retried (a membership round, a settlement, a pull). */
  | { readonly kind: 'error'; readonly during: string; readonly error: unknown };

/** {@link NatsBrokerOptions} with every default applied. */
export type ResolvedNatsOptions = Required<Omit<NatsBrokerOptions, 'servers'>> & {
  readonly servers: string[];
};

/** Applies defaults and checks the values, naming the bad option. */
export function resolveOptions(options: NatsBrokerOptions): ResolvedNatsOptions {
  const resolved: ResolvedNatsOptions = {
    servers: typeof options.servers === 'string' ? [options.servers] : [...options.servers],
    name: options.name ?? 'ferry',
    namespace: checkNamespace(options.namespace ?? 'ferry'),
    partitions: options.partitions ?? 16,
    window: options.window ?? 64,
    ackWaitMs: options.ackWaitMs ?? 30_000,
    leaseTtlMs: options.leaseTtlMs ?? 10_000,
    maxDeliveries: options.maxDeliveries ?? 25,
    retryDelayMs: options.retryDelayMs ?? 200,
    maxRetryDelayMs: options.maxRetryDelayMs ?? 30_000,
    publishWindow: options.publishWindow ?? 1024,
    retentionMs: options.retentionMs ?? 7 * 24 * 3600_000,
    duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
    replicas: options.replicas ?? 1,
    requestTimeoutMs: options.requestTimeoutMs ?? 5000,
    reconnectWaitMs: options.reconnectWaitMs ?? 250,
    onEvent: options.onEvent ?? (() => undefined),
  };
  const positive: Array<keyof ResolvedNatsOptions> = [
    'partitions',
    'window',
    'ackWaitMs',
    'leaseTtlMs',
    'maxDeliveries',
    'retryDelayMs',
    'maxRetryDelayMs',
    'publishWindow',
    'retentionMs',
    'duplicateWindowMs',
    'replicas',
    'requestTimeoutMs',
    'reconnectWaitMs',
  ];
  for (const name of positive) positiveInteger(resolved[name] as number, `NatsBrokerOptions.${name}`);
  if (resolved.ackWaitMs < 1000) throw new RangeError('NatsBrokerOptions.ackWaitMs must be at least 1000');
  if (resolved.leaseTtlMs < 1000) throw new RangeError('NatsBrokerOptions.leaseTtlMs must be at least 1000');
  if (resolved.servers.length === 0) throw new RangeError('NatsBrokerOptions.servers names no server');
  return resolved;
}
