import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, StorageType } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { leaseBucket } from './naming.js';
import type { ResolvedNatsOptions } from './nats.options.js';

/** A lease this member holds: the KV revision it last wrote and when it sent that write. */
export interface Lease {
  readonly partition: number;
  revision: number;
  /** Local time the last successful write was sent; the lease is safe until `sentAt + ttl`. */
  sentAt: number;
}

/**
 * Partition leases and member heartbeats in one JetStream KV bucket whose TTL (`max_age`) is the
 * lease lifetime. A lease is the key `<scope>.p.<n>`, created only if absent (compare-and-set on
 * revision 0) and renewed by compare-and-set on the holder's last revision, so two members never
 * hold it at once: a renewal that finds another revision means the lease was lost. A key nobody
 * renews ages out of the bucket, which frees the partition of a crashed member. A member's
 * heartbeat is the key `<scope>.m.<member>`; the live members of a scope are the keys present.
 */
export class PartitionLeases {
  private constructor(
    private readonly kv: KV,
    /** The lease lifetime in force: the bucket's TTL, whoever created it. */
    readonly ttlMs: number,
  ) {}

  /** Opens the bucket, creating it with `leaseTtlMs` as its TTL if it does not exist. */
  static async open(js: JetStreamClient, options: ResolvedNatsOptions): Promise<PartitionLeases> {
    const kv = await new Kvm(js).create(leaseBucket(options.namespace), {
      ttl: options.leaseTtlMs,
      history: 1,
      storage: StorageType.File,
      replicas: options.replicas,
      description: 'ferry partition leases and member heartbeats',
    });
    const status = await kv.status();
    return new PartitionLeases(kv, status.ttl > 0 ? status.ttl : options.leaseTtlMs);
  }

  /** Announces (or keeps announcing) that `member` is alive in `scope`. */
  async heartbeat(scope: string, member: string): Promise<void> {
    await this.kv.put(memberKey(scope, member), String(Date.now()));
  }

  /** Withdraws `member` from `scope` at once, instead of waiting for its heartbeat to age out. */
  async leave(scope: string, member: string): Promise<void> {
    await this.kv.delete(memberKey(scope, member));
  }

  /** The members of `scope` whose heartbeat has not aged out, sorted. */
  async members(scope: string): Promise<string[]> {
    const prefix = `${scope}.m.`;
    const found: string[] = [];
    for await (const key of await this.kv.keys(`${prefix}*`)) found.push(key.slice(prefix.length));
    return found.sort();
  }

  /** Takes the lease on `partition` if nobody holds it; `undefined` if somebody does. */
  async acquire(scope: string, partition: number, member: string): Promise<Lease | undefined> {
    const sentAt = Date.now();
    try {
      const revision = await this.kv.create(leaseKey(scope, partition), member);
      return { partition, revision, sentAt };
    } catch (error) {
      if (isWrongSequence(error)) return undefined;
      throw error;
    }
  }

  /** Extends a held lease; false if it was lost (it aged out and somebody else may hold it). */
  async renew(scope: string, lease: Lease, member: string): Promise<boolean> {
    const sentAt = Date.now();
    try {
      lease.revision = await this.kv.update(leaseKey(scope, lease.partition), member, lease.revision);
      lease.sentAt = sentAt;
      return true;
    } catch (error) {
      if (isWrongSequence(error)) return false;
      throw error;
    }
  }

  /** Gives a lease back so that the next owner need not wait for it to age out. */
  async release(scope: string, lease: Lease, member: string): Promise<void> {
    const key = leaseKey(scope, lease.partition);
    try {
      await this.kv.delete(key, { previousSeq: lease.revision });
    } catch (error) {
      if (!isWrongSequence(error)) throw error;
      // A renewal raced with us, or the lease was lost: delete it only if it is still ours.
      const entry = await this.kv.get(key);
      if (entry?.operation === 'PUT' && entry.string() === member) {
        await this.kv.delete(key, { previousSeq: entry.revision }).catch(() => undefined);
      }
    }
  }

  /** Whether the lease is still safely ours by the local clock (renewed within TTL less a margin). */
  valid(lease: Lease, now = Date.now()): boolean {
    return now < lease.sentAt + this.ttlMs - Math.min(1000, this.ttlMs / 5);
  }
}

function memberKey(scope: string, member: string): string {
  return `${scope}.m.${member}`;
}

function leaseKey(scope: string, partition: number): string {
  return `${scope}.p.${partition}`;
}

function isWrongSequence(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
