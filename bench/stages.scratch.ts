import { event } from '@ferry/core';
import { createPostgresMessaging, openDatabaseServer, PostgresBroker, withTransaction } from '@ferry/postgres';
import pg from 'pg';
import { BenchDatabases } from './lib/bench-databases.js';
import { openLoop } from './lib/report.js';
import { BenchOrders } from './messaging/bench-order.js';

const rate = Number(process.env.RATE ?? 1100);
const server = await openDatabaseServer({ adminUrl: process.env.FERRY_BENCH_DATABASE_URL, dataDir: '.ferry/bench-postgres' });
const databases = new BenchDatabases(server);
const wall = () => performance.timeOrigin + performance.now();
try {
  const serviceUrl = await databases.fresh('service');
  const consumerUrl = await databases.fresh('consumer');
  const brokerUrl = await databases.fresh('broker');
  const broker = await PostgresBroker.connect({ connectionString: brokerUrl });
  const cbroker = await PostgresBroker.connect({ connectionString: brokerUrl });
  const orders = new BenchOrders('Stages');
  const service = createPostgresMessaging({ connectionString: serviceUrl, broker, poolSize: 18, relay: {} });
  await service.start();
  await orders.createTable(service);
  const side = createPostgresMessaging({ connectionString: consumerUrl, broker: cbroker, poolSize: 20, relay: false });
  await side.start();
  await side.pool.query('CREATE TABLE seen (order_id text, total numeric)');
  const t = new Map<string, { sched: number; committed?: number; start?: number; done?: number; delivered?: number }>();
  const sub = cbroker.subscribe.bind(cbroker);
  (cbroker as any).subscribe = (spec: any, handler: any) => sub(spec, (d: any) => { const r = t.get(d.message.id); if (r) r.delivered = wall(); return handler(d); });
  const consumer = side.consumer('c', { concurrency: 16, onEvent: (e) => { if (e.kind === 'handled') { const r = t.get(e.message.id); if (r) r.done = wall(); } } })
    .on(orders.type, async ({ tx, message }) => { const r = t.get(message.id); if (r) r.start = wall(); await tx.query('INSERT INTO seen VALUES ($1, $2)', [message.payload.orderId, message.payload.total]); });
  await consumer.start();
  const run = async (ms: number, record: boolean) => openLoop(rate, ms, async (s) => {
    const sched = performance.timeOrigin + s;
    const id = await orders.place(service, sched);
    if (record) t.set(id, { sched, committed: wall() });
  });
  await run(2000, false);
  await run(6000, true);
  await new Promise((r) => setTimeout(r, 1000));
  const ids = [...t.keys()];
  const ob = await service.pool.query(`SELECT message_id::text AS id, extract(epoch from created_at)*1000 AS c, extract(epoch from published_at)*1000 AS p FROM ferry.outbox WHERE message_id = ANY($1::uuid[])`, [ids]);
  const bc = new pg.Client({ connectionString: brokerUrl }); await bc.connect();
  const bm = await bc.query(`SELECT message_id AS id, extract(epoch from published_at)*1000 AS p FROM ferry_broker.messages WHERE message_id = ANY($1::text[])`, [ids]);
  await bc.end();
  const claim = new Map(ob.rows.map((r) => [r.id, Number(r.p)]));
  const brk = new Map(bm.rows.map((r) => [r.id, Number(r.p)]));
  const stages: Record<string, number[]> = { 'sched→commit': [], 'commit→relay tx start': [], 'relay tx→broker tx start': [], 'broker tx→delivered': [], 'delivered→handler start': [], 'handler→done': [], total: [] };
  for (const [id, r] of t) {
    if (!r.start || !r.done || !claim.get(id) || !brk.get(id)) continue;
    stages['sched→commit']!.push(r.committed! - r.sched);
    stages['commit→relay tx start']!.push(claim.get(id)! - r.committed!);
    stages['relay tx→broker tx start']!.push(brk.get(id)! - claim.get(id)!);
    stages['broker tx→delivered']!.push(r.delivered! - brk.get(id)!);
    stages['delivered→handler start']!.push(r.start - r.delivered!);
    stages['handler→done']!.push(r.done - r.start);
    stages.total!.push(r.done - r.sched);
  }
  const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length * p)]!.toFixed(2); };
  console.log(`rate ${rate}/s, ${stages.total!.length} messages`);
  for (const [k, xs] of Object.entries(stages)) console.log(k.padEnd(28), 'p50', pct(xs, 0.5).padStart(7), 'p90', pct(xs, 0.9).padStart(7), 'p99', pct(xs, 0.99).padStart(7));
  await consumer.stop(); await side.stop(); await service.stop(); await broker.close(); await cbroker.close();
} finally { await databases.dropAll(); await server.stop(); }
process.exit();
