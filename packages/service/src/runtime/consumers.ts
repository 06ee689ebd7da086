import {
  type Broker,
  type ConsumerEvent,
  type DeadLetterStore,
  type Inbox,
  MessageConsumer,
  type MessageHandler,
  type MessageType,
  type PayloadOf,
  type RetryPolicy,
} from '@ferry/core';
import type { Logger } from 'pino';
import { brokerCheck, type HealthCheck } from '../health/health-check.js';
import { consumerEventMetrics } from '../metrics/consumer.metrics.js';
import type { Metrics } from '../metrics/metrics.js';
import { tracedHandler } from '../tracing/message-tracing.js';
import type { Tracing } from '../tracing/tracing.js';
import { type Component, consumerComponent } from './component.js';

/** A handler for one message type, as a service declares it. */
export interface HandlerDeclaration<Tx> {
  readonly type: MessageType;
  readonly handler: MessageHandler<Tx, never>;
  readonly channel?: string | undefined;
}

/** Pairs a message type with its handler, type-checked. */
export function handle<Tx, T extends MessageType>(
  type: T,
  handler: MessageHandler<Tx, PayloadOf<T>>,
  channel?: string,
): HandlerDeclaration<Tx> {
  return { type, handler: handler as MessageHandler<Tx, never>, channel };
}

/** A consumer group the service runs: where messages come from and who handles them. */
export interface ConsumerDeclaration<Tx = unknown> {
  readonly group: string;
  readonly broker: Broker;
  readonly inbox: Inbox<Tx>;
  readonly deadLetters: DeadLetterStore;
  readonly handlers: readonly HandlerDeclaration<Tx>[];
  /** Types that may arrive and are skipped rather than dead-lettered, by channel. */
  readonly knows?: Readonly<Record<string, readonly MessageType[]>> | undefined;
  readonly concurrency?: number | undefined;
  readonly retry?: Partial<RetryPolicy> | undefined;
}

/**
 * Builds a `MessageConsumer` from a declaration with the runtime's instruments: each handler runs
 * in a consumer span continuing the message's trace with its principal and correlation id, every
 * outcome is a metric, retries and dead letters are log lines. Returns the consumer as a
 * component and a readiness check of its broker.
 */
export function buildConsumer<Tx>(
  declaration: ConsumerDeclaration<Tx>,
  deps: { readonly tracing: Tracing; readonly metrics: Metrics; readonly logger: Logger },
): { consumer: MessageConsumer<Tx>; component: Component; check: HealthCheck } {
  const record = consumerEventMetrics(deps.metrics);
  const log = deps.logger.child({ group: declaration.group });
  const onEvent = (event: ConsumerEvent) => {
    record(event);
    if (event.kind === 'retrying')
      log.warn(
        {
          err: event.error,
          message_id: event.message.id,
          type: event.message.headers.type,
          attempt: event.attempt,
        },
        `handler failed, retrying in ${event.delayMs} ms`,
      );
    else if (event.kind === 'dead-lettered')
      log.error(
        {
          message_id: event.message.id,
          type: event.message.headers.type,
          attempts: event.attempts,
          reason: event.reason,
        },
        'message dead-lettered',
      );
  };
  const consumer = new MessageConsumer<Tx>({
    group: declaration.group,
    broker: declaration.broker,
    inbox: declaration.inbox,
    deadLetters: declaration.deadLetters,
    concurrency: declaration.concurrency,
    retry: declaration.retry,
    onEvent,
  });
  for (const h of declaration.handlers)
    consumer.on(
      h.type,
      tracedHandler(deps.tracing, declaration.group, h.handler as MessageHandler<Tx, unknown>),
      h.channel,
    );
  for (const [channel, types] of Object.entries(declaration.knows ?? {})) consumer.knows(channel, types);
  return {
    consumer,
    component: consumerComponent(consumer, declaration.broker),
    check: brokerCheck(declaration.broker, `broker:${declaration.group}`),
  };
}
