import type { GroupRoster } from './group.roster.js';
import type { PartitionConsumer } from './partition.consumer.js';

/**
 * Spreads a group's busy partitions over its members. Single-active-consumer makes the first
 * member to join a partition queue its consumer until it leaves, so without this the first
 * member would do all the work. Every interval a member counts the group's members (the
 * roster) and the partitions it received messages from; if those exceed its fair share,
 * ceil(partitions / members), it hands the excess over: it leaves those queues the safe way
 * (see {@link PartitionConsumer.handOver}) and joins them again at the back, so the next
 * waiting member takes them. Handing over releases the partition's prefetched messages, which
 * raises their `x-delivery-count` by one.
 */
export class Rebalancer {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(
    private readonly partitions: readonly PartitionConsumer[],
    private readonly roster: GroupRoster,
    private readonly intervalMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(): void {
    this.#timer = setInterval(() => {
      this.#running ??= this.#tick()
        .catch(this.onError)
        .finally(() => {
          this.#running = undefined;
        });
    }, this.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }

  async #tick(): Promise<void> {
    const busy = this.partitions.filter((partition) => partition.delivered > 0);
    for (const partition of this.partitions) partition.delivered = 0;
    const members = await this.roster.members();
    if (this.#stopped || members === undefined || members < 2) return;
    const fairShare = Math.ceil(this.partitions.length / members);
    if (busy.length <= fairShare) return;
    const excess = shuffle(busy).slice(0, busy.length - fairShare);
    await Promise.all(excess.map((partition) => partition.handOver()));
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
