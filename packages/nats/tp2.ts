import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
const nc = await connect({ servers: 'nats://127.0.0.1:4222' });
const jsm = await jetstreamManager(nc);
const name = 'tpraw' + Date.now().toString(36);
await jsm.streams.add({ name, subjects: [`${name}.>`] });
const js = jetstream(nc);
const data = new TextEncoder().encode('x'.repeat(200));
for (const win of [64, 256, 1024, 4096]) {
  const n = 20000;
  const t = performance.now();
  let inflight = 0; let wake: (() => void) | undefined;
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    if (inflight >= win) await new Promise<void>((r) => (wake = r));
    inflight++;
    const h = headers(); h.set('Nats-Msg-Id', `${win}-${i}`);
    all.push(js.publish(`${name}.${i % 16}`, data, { headers: h }).finally(() => { inflight--; const w = wake; wake = undefined; w?.(); }));
  }
  await Promise.all(all);
  console.log(`raw window ${win}: ${Math.round(n / ((performance.now() - t) / 1000))} msgs/s`);
}
// core publish + flush as upper bound
{
  const n = 50000; const t = performance.now();
  for (let i = 0; i < n; i++) nc.publish(`${name}.x`, data);
  await nc.flush();
  console.log(`core publish (no ack): ${Math.round(n / ((performance.now() - t) / 1000))} msgs/s`);
}
await jsm.streams.delete(name);
await nc.close();
