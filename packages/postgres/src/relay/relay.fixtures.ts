import { type Broker, defineEvent, type WireMessage } from '@ferry/core';
import { z } from 'zod';

/** What the relay tests publish: a number, to check order and completeness. */
export const Noted = defineEvent('Noted', z.object({ n: z.number() }));

/** A real broker that records what it acknowledged, in order, and can be told to refuse publishes. */
export class RecordingBroker implements Broker {
  readonly name = 'recording';
  readonly acknowledged: WireMessage[] = [];
  down = false;
  attempts = 0;
  constructor(private readonly inner: Broker) {}
  async publish(messages: readonly WireMessage[]) {
    this.attempts++;
    if (this.down) throw new Error('broker unavailable');
    await this.inner.publish(messages);
    this.acknowledged.push(...messages);
  }
  /** Bodies' `n` of the acknowledged messages of one channel, in publish order. */
  numbers(channel: string): number[] {
    return this.acknowledged.filter((m) => m.channel === channel).map((m) => JSON.parse(m.body).n);
  }
  subscribe: Broker['subscribe'] = (spec, handler) => this.inner.subscribe(spec, handler);
  isReady = () => !this.down;
  close = async () => {};
}
