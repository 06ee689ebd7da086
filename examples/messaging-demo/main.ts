import { type ConsumerEvent, toWire } from '@ferry/core';
import {
  createPostgresMessaging,
  openDatabaseServer,
  PostgresBroker,
  type RelayEvent,
  withTransaction,
} from '@ferry/postgres';
import { ORDER_REPLIES, PlaceOrder, TicketCreated } from './src/contracts.js';

/*
 * `npm start`: the messaging backbone on the embedded default. An order service places an
 * order and sends PlaceOrder in the same transaction; the relay carries it through the broker
 * to the kitchen, whose idempotent consumer creates a ticket and replies through its own outbox.
 * Then a redelivered duplicate is absorbed and a malformed message is dead-lettered.
 */
const t0 = performance.now();
const say = (who: string, what: string) =>
  console.log(`${`+${Math.round(performance.now() - t0)}ms`.padStart(8)}  ${who.padEnd(9)} ${what}`);

const server = await openDatabaseServer({ adminUrl: process.env.FERRY_DATABASE_URL });
say(
  'postgres',
  server.embedded
    ? `embedded PostgreSQL ready (data in .ferry/postgres, ${server.adminUrl.replace(/:[^:@]*@/, ':***@')})`
    : `using ${process.env.FERRY_DATABASE_URL}`,
);
const broker = await PostgresBroker.connect({ connectionString: await server.database('ferry_broker') });
say('broker', 'durable broker on PostgreSQL tables, database ferry_broker');

const relayLog = (service: string) => (e: RelayEvent) => {
  if (e.kind === 'published')
    say(
      'relay',
      `${service}'s relay: ${e.count} message(s) published, broker ack in ${e.durationMs.toFixed(1)} ms, outbox rows marked published`,
    );
};
const consumerLog = (e: ConsumerEvent) => {
  const who = e.group.replace('-service', '');
  if (e.kind === 'duplicate')
    say(
      who,
      `${e.message.headers.type} ${e.message.id.slice(0, 13)}… is a duplicate: skipped, acknowledged (inbox)`,
    );
  if (e.kind === 'dead-lettered')
    say(who, `dead-lettered message ${e.message.id.slice(0, 13)}…: ${e.reason}`);
};

const order = createPostgresMessaging({
  connectionString: await server.database('ferry_demo_order'),
  broker,
  relay: { onEvent: relayLog('order') },
});
const kitchen = createPostgresMessaging({
  connectionString: await server.database('ferry_demo_kitchen'),
  broker,
  relay: { onEvent: relayLog('kitchen') },
});
await Promise.all([order.start(), kitchen.start()]);
await order.pool.query(
  'CREATE TABLE IF NOT EXISTS orders (id text PRIMARY KEY, state text NOT NULL, total numeric NOT NULL)',
);
await kitchen.pool.query(
  'CREATE TABLE IF NOT EXISTS tickets (id text PRIMARY KEY, restaurant text NOT NULL, items jsonb NOT NULL)',
);

const kitchenConsumer = kitchen
  .consumer('kitchen-service', { onEvent: consumerLog })
  .on(PlaceOrder, async ({ tx, message }) => {
    const { orderId, restaurant, items } = message.payload;
    say(
      'kitchen',
      `received ${message.headers.type} for ${orderId} (delivered by the broker); handling it in one transaction:`,
    );
    await tx.query('INSERT INTO tickets (id, restaurant, items) VALUES ($1, $2, $3)', [
      orderId,
      restaurant,
      JSON.stringify(items),
    ]);
    const readyBy = new Date(Date.now() + 20 * 60_000).toISOString();
    await kitchen.messaging.reply(tx, message, 'success', TicketCreated, {
      orderId,
      ticketId: orderId,
      readyBy,
    });
    say('kitchen', '  inbox row + ticket row + TicketCreated reply in the outbox, committed together');
  });

let replied: () => void;
const gotReply = new Promise<void>((resolve) => {
  replied = resolve;
});
const orderConsumer = order.consumer('order-service', { onEvent: consumerLog }).on(
  TicketCreated,
  async ({ tx, message }) => {
    await tx.query("UPDATE orders SET state = 'APPROVED' WHERE id = $1", [message.payload.orderId]);
    say(
      'order',
      `reply ${message.headers.type} (${message.headers.outcome}): ticket ${message.payload.ticketId}, ready by ${message.payload.readyBy.slice(11, 16)}; order APPROVED`,
    );
    replied();
  },
  ORDER_REPLIES,
);
await Promise.all([kitchenConsumer.start(), orderConsumer.start()]);

const orderId = `order-${Date.now().toString(36)}`;
const sent = await withTransaction(order.pool, async (tx) => {
  await tx.query("INSERT INTO orders (id, state, total) VALUES ($1, 'APPROVAL_PENDING', 23.50)", [orderId]);
  return order.messaging.sendCommand(
    tx,
    PlaceOrder,
    { orderId, restaurant: 'Ajanta', items: [{ name: 'Chicken Vindaloo', quantity: 2 }], total: '23.50' },
    { replyTo: ORDER_REPLIES, correlationId: orderId },
  );
});
say(
  'order',
  `committed order ${orderId} and PlaceOrder (${sent.id.slice(0, 13)}…) in one transaction: the outbox row exists only because the order does`,
);
await gotReply;

say('demo', 'now the broker delivers the same PlaceOrder again, as brokers may:');
await broker.publish([toWire(sent)]);
say('demo', 'and someone sends the kitchen a message that is not JSON:');
await broker.publish([{ ...toWire(sent), id: crypto.randomUUID(), body: '{"orderId": oops' }]);
while (kitchenConsumer.stats.duplicates + kitchenConsumer.stats.deadLettered < 2)
  await new Promise((r) => setTimeout(r, 20));

const [dead] = await kitchen.deadLetters.list();
say(
  'demo',
  `dead letters in the kitchen's database: ${dead ? `1 (reason: "${dead.reason}")` : 0}; the consumer kept going`,
);
const tickets = await kitchen.pool.query('SELECT count(*)::int AS n FROM tickets WHERE id = $1', [orderId]);
say('demo', `tickets for ${orderId}: ${tickets.rows[0].n} (exactly once, though the command arrived twice)`);

await Promise.all([kitchenConsumer.stop(), orderConsumer.stop()]);
await Promise.all([order.stop(), kitchen.stop()]);
await broker.close();
await server.stop();

console.log(`
What to try next:
  npm test                     unit and integration tests (the embedded server again; more suites run when
                               PostgreSQL, NATS or RabbitMQ are reachable on 127.0.0.1)
  npm run bench:messaging      outbox overhead, broker throughput and open-loop latency
  FERRY_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm start
                               the same demo on your own PostgreSQL server
  docs/patterns/               one page per pattern: what it solves, how Ferry does it, where the code is
  Each service's database holds ferry.outbox, ferry.inbox and ferry.dead_letters; the data stays in
  .ferry/postgres between runs (delete the folder to start afresh).
`);
