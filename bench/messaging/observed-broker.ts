import type { Broker, WireMessage } from '@ferry/core';

/**
 * `broker` with its `publish` observed: `acked` is called, once the real publish has resolved
 * (the broker acknowledged every message), with the messages and the call's start and end times.
 */
export function observePublish(
  broker: Broker,
  acked: (messages: readonly WireMessage[], startedAt: number, ackedAt: number) => void,
): Broker {
  return {
    name: broker.name,
    isReady: () => broker.isReady(),
    subscribe: (spec, handler) => broker.subscribe(spec, handler),
    close: () => broker.close(),
    async publish(messages) {
      const startedAt = performance.now();
      await broker.publish(messages);
      acked(messages, startedAt, performance.now());
    },
  };
}
