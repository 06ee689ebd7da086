import type { WireMessage } from '@ferry/core';
import type { Consumer, ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { abortableSleep } from './abortable-sleep.js';
import { ackBatcherOf } from './ack-batcher.js';
import { backoff, confirmReply, replyOf } from './jetstream-replies.js';
import { isNotFound, type JetStreamTopology } from './jetstream-topology.js';
import type { ResolvedNatsOptions } from './nats.options.js';
import type { Lease, PartitionLeases } from './partition-lease.js';
import { decodeWire } from './wire-codec.js';

/** A message a member holds: pulled from JetStream and not yet settled. */
export interface HeldMessage {
  readonly worker: PartitionWorker;
  /** Stream sequence: the message's identity within the stream. */
  readonly seq: number;
  readonly wire: WireMessage;
  /** The latest delivery (its reply subject acknowledges it; its count says how often JetStream sent it). */
  msg: JsMsg;
  /** `waiting` for its key, `running` in a handler, `settled`, or `returned` to JetStream unstarted. */
  state: 'waiting' | 'running' | 'settled' | 'returned';
  /** Retries in place after the handler rejected. */
  retries: number;
}

/** What a worker needs from its member. */
export interface WorkerContext {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly topology: JetStreamTopology;
  readonly leases: PartitionLeases;
  readonly options: ResolvedNatsOptions;
  readonly group: string;
  readonly channel: string;
  /** Hands a message to the member's keyed dispatcher. */
  dispatch(item: HeldMessage): void;
  /** Called when the lease ran out by the local clock: the member stops the worker. */
  leaseExpired(worker: PartitionWorker): void;
}

/**
 * A pull request's lifetime. A release waits for the open pull to end, so that every message
 * JetStream sent for it arrives and is returned at once, rather than after `ackWaitMs`; this
 * bounds a graceful handover to about a second, at the cost of one small request per owned
 * partition per second while idle.
 */
const FETCH_EXPIRES_MS = 1000;
const RECOVERY_CHECK_MS = 200;
/**
 * Ack waits a recovering worker waits for what the server counts before it restarts the consumer
 * from its ack floor. JetStream's back-off can hold a redelivery back for 8 ack waits.
 */
const RECOVERY_ACK_WAITS = 10;

/**
 * Works one partition of one group while this member holds its lease: pulls from the partition's
 * durable consumer up to `window` unacknowledged messages, hands them to the member's keyed
 * dispatcher in stream order, keeps their ack deadline alive with in-progress acks, and settles
 * each with a confirmed ack, nak or term.
 *
 * When it takes over a partition whose consumer still has messages delivered to someone else and
 * not acknowledged (a member that crashed or released it), it first *recovers*: it dispatches
 * nothing until every unacknowledged message is in its hands, then dispatches all of them in stream
 * order. Per-key order thus survives a change of owner. If the server counts unacknowledged
 * messages that never come, the worker restarts the consumer from its ack floor (see
 * {@link PartitionWorker#recover}).
 */
export class PartitionWorker {
  readonly held = new Map<number, HeldMessage>();
  #state: 'starting' | 'recovering' | 'restarting' | 'running' | 'stopping' | 'stopped' = 'starting';
  #consumer?: Consumer;
  /** Counts consumer restarts: a message pulled from an earlier consumer is dropped. */
  #generation = 0;
  #fetch?: ConsumerMessages;
  #loop?: Promise<void>;
  #heartbeat?: ReturnType<typeof setInterval>;
  #stopping?: Promise<void>;
  #lost = false;
  readonly #stop = new AbortController();
  #changed: Array<() => void> = [];
  /** Messages that arrived after stopping began; returned once the open pull has ended. */
  readonly #late: JsMsg[] = [];

  constructor(
    private readonly ctx: WorkerContext,
    readonly partition: number,
    readonly lease: Lease,
  ) {}

  /** Whether a waiting message of this partition may be handed to a handler now. */
  mayStart(): boolean {
    return this.#state === 'running' && this.ctx.leases.valid(this.lease);
  }

  /** Whether the worker has begun stopping (its messages must not be retried in place). */
  get stopping(): boolean {
    return this.#state === 'stopping' || this.#state === 'stopped';
  }

  /** Whether the worker has stopped: nothing it held is unsettled any more. */
  get stopped(): boolean {
    return this.#state === 'stopped';
  }

  /** The stop signal: aborts retry pauses when the worker stops. */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  /** Creates the consumer if needed and starts pulling. */
  async start(): Promise<void> {
    const { stream, consumer } = await this.ctx.topology.ensureConsumer(
      this.ctx.group,
      this.ctx.channel,
      this.partition,
    );
    this.#consumer = await this.ctx.js.consumers.get(stream, consumer);
    const { ackWaitMs } = this.ctx.options;
    const every = Math.max(250, Math.floor(Math.min(ackWaitMs / 3, this.ctx.leases.ttlMs / 4)));
    this.#heartbeat = setInterval(() => this.#keepAlive(), every);
    this.#loop = this.#run();
  }

  /**
   * Stops pulling, returns unstarted messages to JetStream in stream order (so the next owner gets
   * them first), and waits until every running handler has settled its message. `lost` means the
   * lease is gone: settlements are then tried a few times only.
   */
  stop(reason: 'release' | 'lost'): Promise<void> {
    this.#stopping ??= this.#stopNow(reason);
    return this.#stopping;
  }

  /**
   * Acknowledges, naks (redeliver now) or terminates a message. Naks and terms are confirmed by
   * the server. An ack of a handled message is sent without waiting for the server's answer:
   * a confirmed ack costs a request per message (a reply, a timer, an error object for the
   * timeout), and an ack lost with the connection only means JetStream redelivers the message
   * after `ackWaitMs`, a duplicate the consumer's inbox skips. Stopping waits until the server
   * has every ack sent (see {@link stop}).
   */
  async settle(item: HeldMessage, outcome: 'ack' | 'nak' | 'term'): Promise<void> {
    const payload = outcome === 'ack' ? '+ACK' : outcome === 'nak' ? '-NAK' : '+TERM';
    // A nak while the last pull is open would bring the message straight back to this worker.
    if (outcome === 'nak' && this.stopping) await this.#loop;
    if (outcome === 'ack') this.#ack(item.msg);
    else await this.#confirm(item.msg, payload);
    item.state = outcome === 'nak' ? 'returned' : 'settled';
    this.held.delete(item.seq);
    this.#signalChange();
  }

  async #stopNow(reason: 'release' | 'lost'): Promise<void> {
    this.#lost = reason === 'lost';
    this.#state = 'stopping';
    this.#stop.abort();
    this.#signalChange();
    // A lost lease stops at once; a release lets the open pull run out (see FETCH_EXPIRES_MS).
    if (this.#lost) await this.#fetch?.close().catch(() => undefined);
    await this.#loop;
    const unstarted = [...this.held.values()].filter((item) => item.state === 'waiting');
    for (const item of unstarted) {
      item.state = 'returned';
      this.held.delete(item.seq);
    }
    const returned = [...unstarted.map((item) => item.msg), ...this.#late].sort(
      (a, b) => a.info.streamSequence - b.info.streamSequence,
    );
    // Sent in stream order on one connection, so JetStream queues them for redelivery in that order.
    await Promise.all(returned.map((msg) => this.#confirm(msg, '-NAK')));
    while (this.held.size > 0) await this.#nextChange();
    // The acks sent without an answer have reached the server before the lease is given back.
    if (!this.#lost) {
      ackBatcherOf(this.ctx.nc).flush();
      await this.ctx.nc.flush().catch(() => undefined);
    }
    clearInterval(this.#heartbeat);
    this.#state = 'stopped';
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    let failures = 0;
    while (this.#state === 'starting' && !signal.aborted) {
      try {
        const info = await this.#consumer!.info();
        this.#state = info.num_ack_pending > 0 ? 'recovering' : 'running';
      } catch (error) {
        this.#report('reading the consumer', error);
        await abortableSleep(backoff(++failures), signal);
      }
    }
    if (this.#state === 'recovering') void this.#recover();
    failures = 0;
    while (!this.stopping) {
      // Refill only once half the window is free: a pull per settled message would cost a
      // request, a subscription and its removal for each message. Recovering takes any room,
      // since nothing is dispatched before every unacknowledged message is held.
      const room = this.ctx.options.window - this.held.size;
      const refillAt = this.#state === 'recovering' ? 1 : Math.ceil(this.ctx.options.window / 2);
      if (room < refillAt || this.#state === 'restarting') {
        await this.#nextChange();
        continue;
      }
      try {
        const generation = this.#generation;
        const fetch = await this.#consumer!.fetch({ max_messages: room, expires: FETCH_EXPIRES_MS });
        this.#fetch = fetch;
        // The client ends a fetch at its expiry; this guard also ends one lost in a reconnect.
        const guard = setTimeout(() => void fetch.close(), FETCH_EXPIRES_MS + 5000);
        try {
          for await (const msg of fetch) if (generation === this.#generation) this.#receive(msg);
        } finally {
          clearTimeout(guard);
          this.#fetch = undefined;
        }
        failures = 0;
      } catch (error) {
        this.#report('pulling', error);
        // Deleted behind our back (or lost by the server): create it again and go on.
        if (isNotFound(error)) {
          await this.ctx.topology
            .ensureConsumer(this.ctx.group, this.ctx.channel, this.partition)
            .catch((e: unknown) => this.#report('re-creating the consumer', e));
        }
        await abortableSleep(backoff(++failures), signal);
      }
    }
  }

  #report(during: string, error: unknown): void {
    const where = `${this.ctx.group} on ${this.ctx.channel} partition ${this.partition}`;
    this.ctx.options.onEvent({ kind: 'error', during: `${during} (${where})`, error });
  }

  #receive(msg: JsMsg): void {
    const seq = msg.info.streamSequence;
    const known = this.held.get(seq);
    if (known) {
      // JetStream sent again a message we hold (its ack deadline passed while we were cut off).
      known.msg = msg;
      return;
    }
    if (this.stopping) {
      this.#late.push(msg);
      return;
    }
    const wire = decodeWire(msg.headers, msg.data, {
      id: `${msg.info.stream}:${seq}`,
      channel: this.ctx.channel,
    });
    const item: HeldMessage = { worker: this, seq, wire, msg, state: 'waiting', retries: 0 };
    this.held.set(seq, item);
    if (this.#state === 'running') this.ctx.dispatch(item);
  }

  /**
   * Waits until every message the consumer has out is held here, then dispatches in stream order.
   * JetStream redelivers an unacknowledged message once its ack wait has passed, and this worker
   * pulls all the while, so normally everything out reaches it within an ack wait or two (eight
   * at most, with the consumer's back-off). A server that counts more than it ever delivers
   * (nats-server before 2.9.22 could restore more than `max_ack_pending` after a restart, blocking
   * the consumer) would hold the partition for ever: after ten ack waits the worker restarts the
   * consumer from its ack floor instead ({@link restart}). Nothing has been dispatched yet, so the
   * messages it holds are dropped and come again, in stream order, with any the server never sent.
   */
  async #recover(): Promise<void> {
    const signal = this.#stop.signal;
    const giveUpAt = performance.now() + RECOVERY_ACK_WAITS * this.ctx.options.ackWaitMs + FETCH_EXPIRES_MS;
    while (this.#state === 'recovering') {
      await abortableSleep(RECOVERY_CHECK_MS, signal);
      if (this.#state !== 'recovering') return;
      try {
        const info = await this.#consumer!.info();
        // Stopping began while the server answered: the state is no longer ours to change.
        if (this.stopping) return;
        const outstanding = Math.min(info.num_ack_pending, this.ctx.options.window);
        if (outstanding > this.held.size) {
          if (performance.now() < giveUpAt) continue;
          await this.#restart(
            info.ack_floor.stream_seq + 1,
            `the server counts ${info.num_ack_pending} unacknowledged messages but ${this.held.size} arrived within ${RECOVERY_ACK_WAITS} ack waits`,
          );
          return;
        }
      } catch {
        continue;
      }
      this.#state = 'running';
      const items = [...this.held.values()].sort((a, b) => a.seq - b.seq);
      for (const item of items) this.ctx.dispatch(item);
    }
  }

  /**
   * Replaces the partition's consumer by one that delivers from `fromSequence` on, while nothing
   * is dispatched: the open pull is closed, what it brought is dropped (it belonged to the old
   * consumer), and pulling resumes on the new one, which counts nothing unacknowledged. Messages
   * handled before, past the ack floor, come again as duplicates the consumer's inbox skips; their
   * delivery count starts again at one.
   */
  async #restart(fromSequence: number, reason: string): Promise<void> {
    this.#state = 'restarting';
    this.#generation++;
    await this.#fetch?.close().catch(() => undefined);
    this.held.clear();
    const { group, channel } = this.ctx;
    for (let attempt = 1; this.#state === 'restarting'; attempt++) {
      try {
        const { stream, consumer } = await this.ctx.topology.restartConsumer(
          group,
          channel,
          this.partition,
          fromSequence,
        );
        const fresh = await this.ctx.js.consumers.get(stream, consumer);
        if (this.stopping) return;
        this.#consumer = fresh;
        this.#state = 'running';
        this.#signalChange();
        this.ctx.options.onEvent({
          kind: 'consumer-restarted',
          group,
          channel,
          partition: this.partition,
          fromSequence,
          reason,
        });
        return;
      } catch (error) {
        // Deleted and not yet created again, or not even deleted: try the whole step again.
        this.#report('restarting the consumer', error);
        await abortableSleep(backoff(attempt), this.#stop.signal);
      }
    }
  }

  /** In-progress acks for everything held, while the lease is ours; then JetStream may redeliver. */
  #keepAlive(): void {
    if (this.#state === 'stopped') return;
    if (!this.ctx.leases.valid(this.lease)) {
      // Not renewed in time (disconnected, or the member is stuck): let the next owner have it.
      if (!this.stopping) this.ctx.leaseExpired(this);
      return;
    }
    for (const item of this.held.values()) {
      try {
        this.ctx.nc.publish(replyOf(item.msg), '+WPI');
      } catch {
        // Disconnected: the next beat tries again.
      }
    }
  }

  /**
   * Sends an ack without waiting, with the other acks of this turn (see {@link AckBatcher}); on
   * a closed connection it is dropped (JetStream redelivers).
   */
  #ack(msg: JsMsg): void {
    const failed = (error: unknown) =>
      this.#report(`acknowledging message ${msg.info.streamSequence}; JetStream will redeliver it`, error);
    try {
      ackBatcherOf(this.ctx.nc).ack(replyOf(msg), failed);
    } catch (error) {
      failed(error);
    }
  }

  /** A nak or term, confirmed by the server (see {@link confirmReply}). */
  #confirm(msg: JsMsg, payload: string): Promise<void> {
    return confirmReply(this.ctx.nc, msg, payload, {
      timeoutMs: this.ctx.options.requestTimeoutMs,
      // While the lease is ours, keep trying across reconnects. Without it, give up soon:
      // JetStream redelivers to the next owner and the consumer's inbox absorbs the duplicate.
      keepTrying: (attempt) => (!this.#lost && this.ctx.leases.valid(this.lease)) || attempt < 3,
      gaveUp: (error) =>
        this.#report(
          `settling message ${msg.info.streamSequence} (${payload}); JetStream will redeliver it`,
          error,
        ),
    });
  }

  #nextChange(): Promise<void> {
    return new Promise((resolve) => this.#changed.push(resolve));
  }

  #signalChange(): void {
    for (const resolve of this.#changed.splice(0)) resolve();
  }
}
