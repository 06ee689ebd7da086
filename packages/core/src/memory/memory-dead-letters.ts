import { replayedWire } from '../messaging/replay.js';
import type { Broker } from '../ports/broker.port.js';
import type {
  DeadLetter,
  DeadLetterQuery,
  DeadLetterStore,
  NewDeadLetter,
} from '../ports/dead-letter.port.js';

/** An in-memory dead-letter store; replay publishes straight to the broker. */
export class MemoryDeadLetterStore implements DeadLetterStore {
  readonly #entries = new Map<string, DeadLetter>();
  #next = 1;

  constructor(private readonly broker: Broker) {}

  async add(entry: NewDeadLetter): Promise<void> {
    const existing = [...this.#entries.values()].find(
      (e) => e.group === entry.group && e.message.id === entry.message.id,
    );
    const id = existing?.id ?? String(this.#next++);
    this.#entries.set(id, { ...entry, id, deadLetteredAt: new Date().toISOString() });
  }

  async list(query: DeadLetterQuery = {}): Promise<DeadLetter[]> {
    return [...this.#entries.values()]
      .filter((e) => !query.group || e.group === query.group)
      .filter((e) => !query.channel || e.message.channel === query.channel)
      .filter((e) => query.includeReplayed || !e.replayedAt)
      .slice(0, query.limit ?? 100);
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    return this.#entries.get(id);
  }

  async replay(id: string): Promise<void> {
    const entry = this.#entries.get(id);
    if (!entry) throw new Error(`no dead letter ${id}`);
    await this.broker.publish([replayedWire(entry.message)]);
    this.#entries.set(id, { ...entry, replayedAt: new Date().toISOString() });
  }
}
