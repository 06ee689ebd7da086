import { fromWire, MalformedMessageError, type Message, type WireMessage } from '../messaging/message.js';
import { MessageRegistry, type MessageType, type PayloadOf } from '../messaging/message-type.js';
import { formatIssues } from '../messaging/standard-schema.js';
import { positiveInteger } from '../options/positive-integer.js';
import type { Broker, Delivery, Subscription } from '../ports/broker.port.js';
import type { DeadLetterStore } from '../ports/dead-letter.port.js';
import type { Inbox } from '../ports/inbox.port.js';
import { backoffDelay, DEFAULT_RETRY_POLICY, type RetryPolicy } from './backoff.js';

/** What a handler gets: the inbox transaction, the validated message and the attempt number. */
export interface HandlerContext<Tx, P = unknown> {
  /** Write through this; the writes commit with the inbox record. */
  readonly tx: Tx;
  readonly message: Message<P>;
  /** 1 on the first attempt in this process. */
  readonly attempt: number;
}

export type MessageHandler<Tx, P = unknown> = (context: HandlerContext<Tx, P>) => Promise<void>;

/** Thrown by a handler to dead-letter its message at once, without retrying. */
export class NonRetryableError extends Error {
  override readonly name = 'NonRetryableError';
}

/** What happened to one delivery; observers turn these into metrics and logs. */
export type ConsumerEvent =
  | {
      readonly kind: 'handled';
      readonly group: string;
      readonly message: Message;
      readonly durationMs: number;
    }
  | { readonly kind: 'duplicate'; readonly group: string; readonly message: Message }
  | { readonly kind: 'ignored'; readonly group: string; readonly message: Message }
  | {
      readonly kind: 'retrying';
      readonly group: string;
      readonly message: Message;
      readonly attempt: number;
      readonly delayMs: number;
      readonly error: unknown;
    }
  | {
      readonly kind: 'transient-failure';
      readonly group: string;
      readonly message: Message;
      readonly delayMs: number;
      readonly error: unknown;
    }
  | {
      readonly kind: 'dead-lettered';
      readonly group: string;
      readonly message: WireMessage;
      readonly reason: string;
      readonly attempts: number;
    };

/** Counts of what the consumer did, since it started. */
export interface ConsumerStats {
  handled: number;
  duplicates: number;
  ignored: number;
  retries: number;
  deadLettered: number;
}

export interface ConsumerOptions<Tx> {
  /** The consumer group: one per service and purpose, e.g. `kitchen-service`. */
  readonly group: string;
  readonly broker: Broker;
  readonly inbox: Inbox<Tx>;
  readonly deadLetters: DeadLetterStore;
  /** Partition keys handled at once by this process, per channel. */
  readonly concurrency?: number;
  readonly retry?: Partial<RetryPolicy>;
  readonly onEvent?: (event: ConsumerEvent) => void;
  /**
   * Tells infrastructure failures (the database restarting, a lost connection) from a handler's
   * own failures. A transient failure is retried without counting an attempt, so a database
   * outage never dead-letters good messages. Failures of the inbox itself (begin, commit) are
   * always transient. Default: none of the handler's errors are.
   */
  readonly isTransient?: (error: unknown) => boolean;
  /**
   * A message the broker reports handed out this many times to consumers that stopped before
   * settling it (see `Delivery.abandoned`) is dead-lettered without running its handler again:
   * one that crashes its process would otherwise crash every process that takes it. Default 5.
   */
  readonly maxAbandoned?: number;
  /** Injected for tests. */
  readonly sleep?: (ms: number) => Promise<void>;
}

interface Route<Tx> {
  readonly type: MessageType;
  readonly handler: MessageHandler<Tx>;
}

/** Default of `maxAbandoned`. */
const DEFAULT_MAX_ABANDONED = 5;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * An idempotent message consumer for one group: it subscribes to the channels its handlers
 * need, validates each message, runs its handler in the inbox transaction, retries failures
 * with backoff and dead-letters what it cannot handle, so one bad message never stops it.
 *
 * @example
 * const consumer = new MessageConsumer({ group: 'kitchen', broker, inbox, deadLetters })
 *   .on(CreateTicket, async ({ tx, message }) => { await tickets.create(tx, message.payload); });
 * await consumer.start();
 */
export class MessageConsumer<Tx> {
  readonly stats: ConsumerStats = { handled: 0, duplicates: 0, ignored: 0, retries: 0, deadLettered: 0 };
  readonly #routes = new Map<string, Map<string, Route<Tx>>>();
  readonly #known = new Map<string, MessageRegistry>();
  readonly #subscriptions: Subscription[] = [];
  readonly #policy: RetryPolicy;
  readonly #sleep: (ms: number) => Promise<void>;
  #stopping = false;

  constructor(private readonly options: ConsumerOptions<Tx>) {
    this.#policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.#sleep = options.sleep ?? defaultSleep;
    if (options.maxAbandoned !== undefined) positiveInteger(options.maxAbandoned, 'maxAbandoned');
  }

  get group(): string {
    return this.options.group;
  }

  /** The channels this consumer subscribes to. */
  get channels(): string[] {
    return [...new Set([...this.#routes.keys(), ...this.#known.keys()])];
  }

  /** Handles messages of `type` arriving on `channel` (default: the type's own channel). */
  on<T extends MessageType>(
    type: T,
    handler: MessageHandler<Tx, PayloadOf<T>>,
    channel = type.channel,
  ): this {
    if (!channel) throw new Error(`${type.type} has no channel: pass one to on()`);
    if (this.#subscriptions.length > 0) throw new Error('add handlers before start()');
    const routes = this.#routes.get(channel) ?? new Map<string, Route<Tx>>();
    if (routes.has(type.type)) throw new Error(`${type.type} on ${channel} already has a handler`);
    routes.set(type.type, { type, handler: handler as MessageHandler<Tx> });
    this.#routes.set(channel, routes);
    this.#registry(channel).add(type);
    return this;
  }

  /** Declares types that may arrive on `channel` and are skipped, not dead-lettered as unknown. */
  knows(channel: string, types: Iterable<MessageType>): this {
    const registry = this.#registry(channel);
    for (const type of types) registry.add(type);
    return this;
  }

  /**
   * Subscribes to every channel with a handler. If one subscription fails, those already made
   * are closed again before the error is thrown: a consumer whose start failed takes nothing,
   * and its start can be retried.
   */
  async start(): Promise<void> {
    this.#stopping = false;
    try {
      for (const channel of this.channels) {
        const subscription = await this.options.broker.subscribe(
          { channel, group: this.options.group, concurrency: this.options.concurrency },
          (delivery) => this.#deliver(channel, delivery),
        );
        this.#subscriptions.push(subscription);
      }
    } catch (error) {
      await this.stop().catch(() => {});
      throw error;
    }
  }

  /** Stops taking messages; those in flight finish or are released for redelivery. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#subscriptions.splice(0).map((subscription) => subscription.close()));
  }

  #registry(channel: string): MessageRegistry {
    let registry = this.#known.get(channel);
    if (!registry) {
      registry = new MessageRegistry();
      this.#known.set(channel, registry);
    }
    return registry;
  }

  async #deliver(channel: string, delivery: Delivery): Promise<void> {
    const wire = delivery.message;
    const abandoned = delivery.abandoned ?? 0;
    if (abandoned >= (this.options.maxAbandoned ?? DEFAULT_MAX_ABANDONED)) {
      return this.#deadLetter(
        wire,
        `abandoned ${abandoned} times: each consumer that took it stopped (crashed or lost its lease) before settling it; not run again`,
        abandoned,
      );
    }
    let message: Message;
    try {
      message = fromWire(wire);
    } catch (error) {
      if (error instanceof MalformedMessageError)
        return this.#deadLetter(wire, `malformed: ${error.message}`, 0);
      throw error;
    }
    const route = this.#routes.get(channel)?.get(message.headers.type);
    if (!route) {
      if (this.#known.get(channel)?.has(message.headers.type)) {
        this.stats.ignored++;
        this.options.onEvent?.({ kind: 'ignored', group: this.group, message });
        return;
      }
      return this.#deadLetter(wire, `unknown message type ${message.headers.type} on ${channel}`, 0);
    }
    if (route.type.kind !== message.headers.kind) {
      return this.#deadLetter(
        wire,
        `${message.headers.type} should be a ${route.type.kind}, got ${message.headers.kind}`,
        0,
      );
    }
    const checked = await route.type.schema['~standard'].validate(message.payload);
    if (checked.issues) {
      return this.#deadLetter(wire, `schema: ${message.headers.type} ${formatIssues(checked.issues)}`, 0);
    }
    const valid: Message = { ...message, payload: checked.value };
    await this.#handleWithRetries(route, valid, wire);
  }

  async #handleWithRetries(route: Route<Tx>, message: Message, wire: WireMessage): Promise<void> {
    let transientFailures = 0;
    for (let attempt = 1; ; ) {
      const started = performance.now();
      let handlerFailed = false;
      try {
        const result = await this.options.inbox.handle(this.group, message.id, async (tx) => {
          try {
            await route.handler({ tx, message, attempt });
          } catch (error) {
            handlerFailed = true;
            throw error;
          }
        });
        if (result === 'duplicate') {
          this.stats.duplicates++;
          this.options.onEvent?.({ kind: 'duplicate', group: this.group, message });
        } else {
          this.stats.handled++;
          const durationMs = performance.now() - started;
          this.options.onEvent?.({ kind: 'handled', group: this.group, message, durationMs });
        }
        return;
      } catch (error) {
        // Shutting down: leave the message unacknowledged so that another member retries it.
        if (this.#stopping) throw error;
        const transient = !handlerFailed || (this.options.isTransient?.(error) ?? false);
        if (transient && !(error instanceof NonRetryableError)) {
          transientFailures++;
          const delayMs = backoffDelay(this.#policy, Math.min(transientFailures, 30));
          this.options.onEvent?.({ kind: 'transient-failure', group: this.group, message, delayMs, error });
          await this.#sleep(delayMs);
          continue;
        }
        const final = error instanceof NonRetryableError || attempt >= this.#policy.maxAttempts;
        if (final) return this.#deadLetter(wire, `handler failed: ${describe(error)}`, attempt, error);
        const delayMs = backoffDelay(this.#policy, attempt);
        this.stats.retries++;
        this.options.onEvent?.({ kind: 'retrying', group: this.group, message, attempt, delayMs, error });
        await this.#sleep(delayMs);
        attempt++;
      }
    }
  }

  async #deadLetter(wire: WireMessage, reason: string, attempts: number, error?: unknown): Promise<void> {
    await this.options.deadLetters.add({
      group: this.group,
      message: wire,
      reason,
      attempts,
      error:
        error instanceof Error
          ? (error.stack ?? error.message)
          : error === undefined
            ? undefined
            : String(error),
    });
    this.stats.deadLettered++;
    this.options.onEvent?.({ kind: 'dead-lettered', group: this.group, message: wire, reason, attempts });
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
