import { type Broker, MemoryBroker, type WireMessage } from '@ferry/core';
import { waitFor } from '@ferry/testing';
import { describe, expect, it } from 'vitest';
import type { Lsn } from './lsn.js';
import type { CommittedTransaction } from './outbox-transactions.js';
import { PublishPipeline } from './publish-pipeline.js';

/** The in-memory broker, recording each publish call, that can be told to refuse them. */
class CallRecordingBroker implements Broker {
  readonly name = 'calls';
  readonly calls: string[][] = [];
  readonly #inner = new MemoryBroker();
  down = false;
  failures = 0;
  async publish(messages: readonly WireMessage[]) {
    if (this.down) {
      this.failures++;
      throw new Error('broker unavailable');
    }
    await this.#inner.publish(messages);
    this.calls.push(messages.map((m) => m.id));
  }
  subscribe: Broker['subscribe'] = (spec, handler) => this.#inner.subscribe(spec, handler);
  isReady = () => !this.down;
  close = () => this.#inner.close();
}

const transaction = (endLsn: Lsn, ...ids: string[]): CommittedTransaction => ({
  endLsn,
  commitTimeMs: Date.now(),
  messages: ids.map((id) => ({ id, channel: 'c', partitionKey: 'k', headers: {}, body: '{}' })),
});

function pipeline(broker: Broker, batchSize = 100) {
  const acknowledged: Lsn[] = [];
  const pipe = new PublishPipeline({ broker, batchSize, onAcknowledged: (lsn) => acknowledged.push(lsn) });
  return { pipe, acknowledged };
}

describe('publish pipeline', () => {
  it('sends transactions handed in together as one batch and acknowledges the last position', async () => {
    const broker = new CallRecordingBroker();
    const { pipe, acknowledged } = pipeline(broker);
    pipe.push(transaction(10n, 'a'));
    pipe.push(transaction(20n, 'b', 'c'));
    pipe.push(transaction(30n));
    expect(pipe.pendingMessages).toBe(3);
    await waitFor(() => pipe.idle, 'the batch', 1000);
    expect(broker.calls).toEqual([['a', 'b', 'c']]);
    expect(acknowledged).toEqual([30n]);
  });

  it('splits a transaction larger than the batch and acknowledges it once, whole', async () => {
    const broker = new CallRecordingBroker();
    const { pipe, acknowledged } = pipeline(broker, 2);
    pipe.push(transaction(10n, 'a', 'b', 'c', 'd', 'e'));
    pipe.push(transaction(20n, 'f'));
    await waitFor(() => pipe.idle, 'both', 1000);
    expect(broker.calls).toEqual([['a', 'b'], ['c', 'd'], ['e'], ['f']]);
    expect(acknowledged).toEqual([10n, 20n]);
  });

  it('acknowledges nothing while the broker fails, then everything in order', async () => {
    const broker = new CallRecordingBroker();
    broker.down = true;
    const { pipe, acknowledged } = pipeline(broker);
    pipe.push(transaction(10n, 'a'));
    await waitFor(() => broker.failures >= 2, 'retries', 2000);
    pipe.push(transaction(20n, 'b'));
    expect(acknowledged).toEqual([]);
    expect(pipe.pendingMessages).toBe(2);
    broker.down = false;
    await waitFor(() => pipe.idle, 'recovery', 5000);
    expect(broker.calls.flat()).toEqual(['a', 'b']);
    expect(acknowledged.at(-1)).toBe(20n);
  });

  it('stops retrying on close, without acknowledging', async () => {
    const broker = new CallRecordingBroker();
    broker.down = true;
    const { pipe, acknowledged } = pipeline(broker);
    pipe.push(transaction(10n, 'a'));
    await waitFor(() => broker.failures >= 1, 'a failure', 2000);
    await pipe.close();
    broker.down = false;
    pipe.push(transaction(20n, 'b'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(broker.calls).toEqual([]);
    expect(acknowledged).toEqual([]);
  });
});
