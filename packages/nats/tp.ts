import { newMessageId } from '@ferry/core';
import { NatsBroker } from './src/index.js';
import { dropNamespace } from './src/nats.fixtures.js';
const ns = 'tp-' + Date.now().toString(36);
const url = 'nats://127.0.0.1:4222';
const body = JSON.stringify({ orderId: 'x'.repeat(36), lines: [{ sku: 'abc', qty: 2 }], note: 'y'.repeat(100) });
for (const win of [256, 2048]) {
  const b = await NatsBroker.connect({ servers: url, namespace: ns, publishWindow: win });
  const mk = (n: number) => Array.from({ length: n }, (_, i) => ({ id: newMessageId(), channel: 'Order', partitionKey: `o-${i % 1000}`, headers: { kind: 'event', type: 'OrderCreated', createdAt: new Date().toISOString() }, body }));
  await b.publish(mk(1000));
  for (const batch of [20000]) {
    const msgs = mk(batch);
    const t = performance.now();
    await b.publish(msgs);
    const s = (performance.now() - t) / 1000;
    console.log(`window ${win} batch ${batch}: ${Math.round(batch / s)} msgs/s`);
  }
  // relay-like: batches of 500 sequentially
  const msgs = mk(20000);
  const t = performance.now();
  for (let i = 0; i < msgs.length; i += 500) await b.publish(msgs.slice(i, i + 500));
  console.log(`window ${win} 40 x 500: ${Math.round(20000 / ((performance.now() - t) / 1000))} msgs/s`);
  await b.close();
}
await dropNamespace(url, ns);
