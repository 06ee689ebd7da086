import type { ConsumerEvent } from '@ferry/core';
import type { Metrics } from './metrics.js';

/**
 * Turns a `MessageConsumer`'s events into Prometheus figures:
 * `ferry_consumer_messages_total{group,type,outcome}` with outcome `handled`, `duplicate`,
 * `ignored`, `retrying` (one per retry) or `dead_lettered`, and
 * `ferry_consumer_handler_duration_seconds{group,type}` for handled messages.
 * @example
 * new MessageConsumer({ group: 'kitchen', broker, inbox, deadLetters, onEvent: consumerEventMetrics(service.metrics) });
 */
export function consumerEventMetrics(metrics: Metrics): (event: ConsumerEvent) => void {
  const messages = metrics.counter(
    'ferry_consumer_messages_total',
    'Messages a consumer group settled, by outcome',
    ['group', 'type', 'outcome'],
  );
  const duration = metrics.histogram(
    'ferry_consumer_handler_duration_seconds',
    'Time a handler took, inbox transaction included',
    ['group', 'type'],
  );
  return (event) => {
    switch (event.kind) {
      case 'handled':
        messages.inc({ group: event.group, type: event.message.headers.type, outcome: 'handled' });
        duration.observe({ group: event.group, type: event.message.headers.type }, event.durationMs / 1000);
        return;
      case 'duplicate':
      case 'ignored':
      case 'retrying':
        messages.inc({ group: event.group, type: event.message.headers.type, outcome: event.kind });
        return;
      case 'dead-lettered':
        messages.inc({
          group: event.group,
          type: event.message.headers.type ?? 'unknown',
          outcome: 'dead_lettered',
        });
        return;
    }
  };
}

/**
 * Counters for a relay (or any publisher) that reports what it did through callbacks:
 * `ferry_relay_published_total{channel}` and `ferry_relay_failures_total`.
 */
export function relayMetrics(metrics: Metrics): {
  published(channel: string, count: number): void;
  failed(): void;
} {
  const published = metrics.counter('ferry_relay_published_total', 'Messages the relay published', [
    'channel',
  ]);
  const failures = metrics.counter('ferry_relay_failures_total', 'Relay publish attempts that failed');
  return {
    published: (channel, count) => published.inc({ channel }, count),
    failed: () => failures.inc(),
  };
}
