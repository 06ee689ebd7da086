import type { MessageKind } from './message.js';
import type { StandardSchemaV1 } from './standard-schema.js';

/**
 * A message type: its name, kind and payload schema. Contracts export these; senders and
 * receivers share them so that a payload is checked when sent and when received.
 *
 * @example
 * const OrderPlaced = defineMessage({ kind: 'command', type: 'PlaceOrder', schema: z.object({ orderId: z.string() }) });
 */
export interface MessageType<
  K extends MessageKind = MessageKind,
  S extends StandardSchemaV1 = StandardSchemaV1,
> {
  readonly kind: K;
  readonly type: string;
  readonly schema: S;
  /** Default destination channel (events: the aggregate's channel; commands: the handling service's). */
  readonly channel?: string | undefined;
}

/** The payload a message type's schema accepts. */
export type PayloadOf<T extends MessageType> = StandardSchemaV1.InferOutput<T['schema']>;

/** Declares a message type. */
export function defineMessage<K extends MessageKind, S extends StandardSchemaV1>(
  definition: MessageType<K, S>,
): MessageType<K, S> {
  return Object.freeze({ ...definition });
}

/** Declares an event type published on an aggregate's channel. */
export function defineEvent<S extends StandardSchemaV1>(type: string, schema: S, channel?: string) {
  return defineMessage({ kind: 'event', type, schema, channel });
}

/** Declares a command type handled on a service's command channel. */
export function defineCommand<S extends StandardSchemaV1>(type: string, schema: S, channel?: string) {
  return defineMessage({ kind: 'command', type, schema, channel });
}

/** Declares a reply type. */
export function defineReply<S extends StandardSchemaV1>(type: string, schema: S) {
  return defineMessage({ kind: 'reply', type, schema });
}

/** The message types a receiver knows; a type outside it is dead-lettered as unknown. */
export class MessageRegistry {
  readonly #types = new Map<string, MessageType>();

  constructor(types: Iterable<MessageType> = []) {
    for (const type of types) this.add(type);
  }

  /** Adds a type; adding two different definitions of one name is an error. */
  add(type: MessageType): this {
    const existing = this.#types.get(type.type);
    if (existing && existing !== type) throw new Error(`message type ${type.type} is defined twice`);
    this.#types.set(type.type, type);
    return this;
  }

  get(type: string): MessageType | undefined {
    return this.#types.get(type);
  }

  has(type: string): boolean {
    return this.#types.has(type);
  }
}
