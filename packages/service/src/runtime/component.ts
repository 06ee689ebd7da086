import type { Broker, MessageConsumer } from '@ferry/core';

/**
 * Something the service starts after its HTTP listener and stops after it closed, in reverse
 * order: a message consumer, a relay, a saga orchestrator, a projection, a gRPC server.
 */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  /** Finish the work in flight, then release resources. */
  stop(): Promise<void>;
  /** Part of readiness once started: e.g. a consumer's subscriptions are live. */
  ready?(): boolean | Promise<boolean>;
}

/**
 * A `MessageConsumer` as a component: started after the listener, stopped after in-flight
 * requests finished (its handlers finish or their messages are released), ready while started
 * and its broker is usable.
 */
export function consumerComponent<Tx>(
  consumer: MessageConsumer<Tx>,
  broker: Pick<Broker, 'isReady'>,
): Component {
  let running = false;
  return {
    name: `consumer:${consumer.group}`,
    async start() {
      await consumer.start();
      running = true;
    },
    async stop() {
      running = false;
      await consumer.stop();
    },
    ready: () => running && broker.isReady(),
  };
}
