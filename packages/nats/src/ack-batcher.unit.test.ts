import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { AckBatcher } from './ack-batcher.js';

/** A connection that records what is published and when, and refuses one subject. */
function recordingConnection(refuse?: string) {
  const published: string[] = [];
  const nc = {
    publish(subject: string, payload: string) {
      if (subject === refuse) throw new Error('connection closed');
      published.push(`${subject} ${payload}`);
    },
  } as unknown as NatsConnection;
  return { nc, published };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('AckBatcher', () => {
  it('sends the acks made in one turn together, after the turn, in order', async () => {
    const { nc, published } = recordingConnection();
    const acks = new AckBatcher(nc);
    const never = () => expect.unreachable();
    acks.ack('a', never);
    // Acks made microtasks later, as the chains of a batch's resolved messages make them.
    await Promise.resolve();
    acks.ack('b', never);
    await Promise.resolve().then(() => Promise.resolve());
    acks.ack('c', never);
    expect(published).toEqual([]);
    await nextTurn();
    expect(published).toEqual(['a +ACK', 'b +ACK', 'c +ACK']);
    acks.ack('d', never);
    await nextTurn();
    expect(published).toEqual(['a +ACK', 'b +ACK', 'c +ACK', 'd +ACK']);
  });

  it('sends what is queued at once on flush (a worker stopping)', () => {
    const { nc, published } = recordingConnection();
    const acks = new AckBatcher(nc);
    acks.ack('a', () => {});
    acks.flush();
    expect(published).toEqual(['a +ACK']);
  });

  it('reports an ack that cannot be published to its own sender only; the others go', async () => {
    const { nc, published } = recordingConnection('b');
    const acks = new AckBatcher(nc);
    const failed: string[] = [];
    for (const subject of ['a', 'b', 'c']) acks.ack(subject, () => failed.push(subject));
    await nextTurn();
    expect(published).toEqual(['a +ACK', 'c +ACK']);
    expect(failed).toEqual(['b']);
  });
});
