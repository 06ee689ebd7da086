import type { Broker, DeliveryHandler, Subscription, SubscriptionSpec, WireMessage } from '@ferry/core';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type NatsDeadLetter, readDeadLetters } from './dead-letter.js';
import { GroupMember } from './group.member.js';
import { JetStreamTopology } from './jetstream-topology.js';
import { type NatsBrokerOptions, type ResolvedNatsOptions, resolveOptions } from './nats.options.js';
import { NatsPublisher } from './nats.publisher.js';
import { PartitionLeases } from './partition-lease.js';

/** Client pings: a silent server is noticed after two unanswered pings. */
const PING_INTERVAL_MS = 5000;

/**
 * Ferry's {@link Broker} on NATS JetStream. Channels live in file streams (one per channel family),
 * a consumer group is a set of durable pull consumers (one per partition), and partitions are
 * shared among the group's members by leases in a KV bucket, which keeps per-key order across
 * members and processes while different keys run in parallel. See
 * `docs/decisions/0201-nats-broker-design.md`.
 *
 * The connection reconnects forever with jittered back-off; {@link NatsBroker.isReady} is false
 * from a disconnect until JetStream answers again, and members resume pulling by themselves.
 *
 * @example
 * const broker = await NatsBroker.connect({ servers: 'nats://127.0.0.1:4222' });
 * await broker.publish([toWire(message)]);
 * const sub = await broker.subscribe({ channel: 'Order', group: 'kitchen' }, async ({ message }) => {});
 */
export class NatsBroker implements Broker {
  readonly name = 'nats';
  readonly #members = new Set<GroupMember>();
  readonly #publisher: NatsPublisher;
  #ready = true;
  #closed = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly topology: JetStreamTopology,
    private readonly leases: PartitionLeases,
    /** The options in force, defaults applied. */
    readonly options: ResolvedNatsOptions,
  ) {
    this.#publisher = new NatsPublisher(nc, topology, options);
    void this.#watch();
  }

  /** Connects, checks that JetStream answers and opens (or creates) the lease bucket. */
  static async connect(options: NatsBrokerOptions): Promise<NatsBroker> {
    const o = resolveOptions(options);
    const nc = await connect({
      servers: o.servers,
      name: o.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: o.reconnectWaitMs,
      reconnectJitter: o.reconnectWaitMs,
      pingInterval: PING_INTERVAL_MS,
      maxPingOut: 2,
      timeout: o.requestTimeoutMs,
      // Without it the client builds two errors per request (each capturing a stack) in case the
      // request fails, one JetStream publish being one request; the adapter names the operation
      // in its own error reports.
      noAsyncTraces: true,
    });
    try {
      const jsm = await jetstreamManager(nc, { timeout: o.requestTimeoutMs });
      const js = jetstream(nc, { timeout: o.requestTimeoutMs });
      const leases = await PartitionLeases.open(js, o);
      return new NatsBroker(nc, js, jsm, new JetStreamTopology(jsm, o), leases, o);
    } catch (error) {
      await nc.close();
      throw error;
    }
  }

  /** Stores the messages in their channels' streams; resolves once JetStream acknowledged each. */
  publish(messages: readonly WireMessage[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('NatsBroker is closed'));
    return this.#publisher.publish(messages);
  }

  /** Joins `spec.group` on `spec.channel` as a new member. */
  async subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    if (this.#closed) throw new Error('NatsBroker is closed');
    const member = new GroupMember(
      { nc: this.nc, js: this.js, topology: this.topology, leases: this.leases, options: this.options },
      spec,
      handler,
    );
    this.#members.add(member);
    try {
      await member.start();
    } catch (error) {
      this.#members.delete(member);
      await member.close();
      throw error;
    }
    return {
      close: async () => {
        await member.close();
        this.#members.delete(member);
      },
    };
  }

  /** True while connected and JetStream answers. */
  isReady(): boolean {
    return this.#ready && !this.#closed && !this.nc.isClosed();
  }

  /** The dead letters this broker's namespace holds, of one group or of all. */
  deadLetters(group?: string): Promise<NatsDeadLetter[]> {
    return readDeadLetters(this.js, this.topology, this.options, group);
  }

  /** Leaves every group (handlers in flight finish, unsettled messages go back) and disconnects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#members].map((member) => member.close()));
    this.#members.clear();
    await this.nc.close();
  }

  /** The underlying connection, for administration in tests and tools. */
  get connection(): NatsConnection {
    return this.nc;
  }

  /** The JetStream manager, for administration in tests and tools. */
  get manager(): JetStreamManager {
    return this.jsm;
  }

  async #watch(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        this.#ready = false;
        this.options.onEvent({ kind: 'disconnected' });
      }
      if (status.type === 'reconnect') {
        this.options.onEvent({ kind: 'reconnected' });
        void this.#awaitJetStream();
      }
    }
  }

  /** After a reconnect the server may still be recovering its streams: ready once JetStream answers. */
  async #awaitJetStream(): Promise<void> {
    for (let attempt = 1; !this.#closed && !this.nc.isClosed(); attempt++) {
      try {
        await this.jsm.getAccountInfo();
        if (this.nc.isClosed()) return;
        this.#ready = true;
        this.options.onEvent({ kind: 'ready' });
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * attempt)));
      }
    }
  }
}
