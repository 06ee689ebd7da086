import { KeyedDispatcher } from '../consumer/keyed-dispatcher.js';
import type { WireMessage } from '../messaging/message.js';
import {
  type Broker,
  DEFAULT_CONCURRENCY,
  type DeliveryHandler,
  type Subscription,
  type SubscriptionSpec,
} from '../ports/broker.port.js';

interface Member {
  readonly handler: DeliveryHandler;
  readonly inFlight: Set<Promise<void>>;
}

interface Pending {
  readonly message: WireMessage;
  deliveries: number;
}

class Group {
  readonly members: Member[] = [];
  readonly dispatcher: KeyedDispatcher<Pending>;
  #next = 0;
  #joined: Array<() => void> = [];

  constructor(
    concurrency: number,
    private readonly redeliveryDelayMs: number,
  ) {
    this.dispatcher = new KeyedDispatcher(concurrency, (item) => this.#deliver(item));
  }

  join(member: Member): void {
    this.members.push(member);
    for (const resolve of this.#joined.splice(0)) resolve();
  }

  async #member(): Promise<Member> {
    for (;;) {
      if (this.members.length > 0) return this.members[this.#next++ % this.members.length]!;
      await new Promise<void>((resolve) => this.#joined.push(resolve));
    }
  }

  async #deliver(item: Pending): Promise<void> {
    for (;;) {
      const member = await this.#member();
      item.deliveries++;
      const attempt = member.handler({ message: item.message, deliveryCount: item.deliveries });
      member.inFlight.add(attempt);
      try {
        await attempt;
        return;
      } catch {
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(1000, this.redeliveryDelayMs * item.deliveries)),
        );
      } finally {
        member.inFlight.delete(attempt);
      }
    }
  }
}

/**
 * An in-memory broker for unit tests: consumer groups, per-key order, redelivery of rejected
 * messages. It keeps nothing across restarts; it passes the same `testBroker` suite as the
 * durable adapters.
 */
export class MemoryBroker implements Broker {
  readonly name = 'memory';
  readonly #channels = new Map<string, { log: WireMessage[]; groups: Map<string, Group> }>();
  readonly #subscriptions = new Set<Subscription>();

  constructor(private readonly options: { redeliveryDelayMs?: number } = {}) {}

  async publish(messages: readonly WireMessage[]): Promise<void> {
    for (const message of messages) {
      const channel = this.#channel(message.channel);
      channel.log.push(message);
      for (const group of channel.groups.values()) {
        group.dispatcher.push(message.partitionKey, { message, deliveries: 0 });
      }
    }
  }

  async subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    const channel = this.#channel(spec.channel);
    let group = channel.groups.get(spec.group);
    if (!group) {
      group = new Group(spec.concurrency ?? DEFAULT_CONCURRENCY, this.options.redeliveryDelayMs ?? 20);
      channel.groups.set(spec.group, group);
      // A new group starts from the oldest message the channel holds.
      for (const message of channel.log)
        group.dispatcher.push(message.partitionKey, { message, deliveries: 0 });
    }
    const member: Member = { handler, inFlight: new Set() };
    group.join(member);
    const joined = group;
    const subscription: Subscription = {
      close: async () => {
        const index = joined.members.indexOf(member);
        if (index >= 0) joined.members.splice(index, 1);
        await Promise.allSettled([...member.inFlight]);
        this.#subscriptions.delete(subscription);
      },
    };
    this.#subscriptions.add(subscription);
    return subscription;
  }

  isReady(): boolean {
    return true;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((subscription) => subscription.close()));
  }

  #channel(name: string) {
    let channel = this.#channels.get(name);
    if (!channel) {
      channel = { log: [], groups: new Map() };
      this.#channels.set(name, channel);
    }
    return channel;
  }
}
