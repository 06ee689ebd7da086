import { defineCommand, NonRetryableError } from '@ferry/core';
import { waitFor, wire } from '@ferry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { postgresTargets, useTestDatabase } from '../../../../test/pg-test-database.js';
import { PostgresBroker } from '../broker/postgres-broker.js';
import { withTransaction } from '../database.js';
import { createPostgresMessaging, type PostgresMessaging } from '../runtime/postgres-messaging.js';

const CreateTicket = defineCommand('CreateTicket', z.object({ orderId: z.string() }), 'kitchenService');

for (const target of postgresTargets()) {
  describe(`dead letters on PostgreSQL (${target.name} server)`, () => {
    const service = useTestDatabase(() => target.adminUrl, 'dlq_svc');
    const brokerDb = useTestDatabase(() => target.adminUrl, 'dlq_broker');
    let broker: PostgresBroker;
    let kitchen: PostgresMessaging;
    let broken = true;

    beforeAll(async () => {
      broker = await PostgresBroker.connect({ connectionString: brokerDb().url, leaseMs: 2000 });
      kitchen = createPostgresMessaging({
        connectionString: service().url,
        broker,
        relay: { pollIntervalMs: 100 },
      });
      await kitchen.start();
      await kitchen.pool.query('CREATE TABLE tickets (id text PRIMARY KEY)');
      await kitchen
        .consumer('kitchen-service', { retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 } })
        .on(CreateTicket, async ({ tx, message }) => {
          if (message.payload.orderId === 'poison' && broken) throw new Error('restaurant does not exist');
          if (message.payload.orderId === 'refused') throw new NonRetryableError('order refused');
          await tx.query('INSERT INTO tickets VALUES ($1)', [message.payload.orderId]);
        })
        .start();
    });
    afterAll(async () => {
      await kitchen.stop();
      await broker.close();
    });

    const send = (orderId: string) =>
      withTransaction(kitchen.pool, (tx) =>
        kitchen.messaging.sendCommand(tx, CreateTicket, { orderId }, { correlationId: orderId }),
      );
    const tickets = async () =>
      (await kitchen.pool.query<{ id: string }>('SELECT id FROM tickets ORDER BY id')).rows.map((r) => r.id);

    it('invariant: one bad message never stops the consumer; it is dead-lettered with its reason', async () => {
      await send('poison');
      await broker.publish(
        [wire('kitchenService', 'k', 'not used', { type: 'CreateTicket', kind: 'command' })].map((m) => ({
          ...m,
          body: '{"orderId":',
        })),
      );
      await send('good-1');
      await send('refused');
      await send('good-2');
      await waitFor(
        async () => (await kitchen.deadLetters.list()).length === 3 && (await tickets()).length === 2,
        'three dead letters, two tickets',
      );
      const dead = await kitchen.deadLetters.list({ group: 'kitchen-service' });
      const reasons = dead.map((d) => `${d.reason} (${d.attempts})`).sort();
      expect(reasons).toEqual([
        'handler failed: Error: restaurant does not exist (3)',
        'handler failed: NonRetryableError: order refused (1)',
        expect.stringMatching(/^malformed: body is not JSON.* \(0\)$/),
      ]);
      const poison = dead.find((d) => d.reason.includes('restaurant'))!;
      expect(poison.error).toContain('restaurant does not exist');
      expect(poison.message.headers).toMatchObject({
        type: 'CreateTicket',
        kind: 'command',
        correlationId: 'poison',
      });
      expect(await kitchen.deadLetters.get(poison.id)).toEqual(poison);
      expect(await kitchen.deadLetters.list({ channel: 'elsewhere' })).toEqual([]);
    });

    it('replays a dead letter through the outbox once the cause is fixed', async () => {
      broken = false;
      const poison = (await kitchen.deadLetters.list()).find((d) => d.reason.includes('restaurant'))!;
      await kitchen.deadLetters.replay(poison.id);
      await waitFor(async () => (await tickets()).includes('poison'), 'replayed message handled');
      expect((await kitchen.deadLetters.get(poison.id))!.replayedAt).toBeDefined();
      expect((await kitchen.deadLetters.list()).map((d) => d.id)).not.toContain(poison.id);
      expect(await kitchen.deadLetters.get('12345678')).toBeUndefined();
      await expect(kitchen.deadLetters.replay('987654')).rejects.toThrow(/no dead letter/);
    });
  });
}
