import { createRelay } from '@ferry/postgres';
import pg from 'pg';
import { openBroker, readConfig } from './crash-config.js';
import { retryStart } from './retry-start.js';

/* A relay process for the crash test (polling or tailing, as configured): runs until killed. */
const config = readConfig();
const broker = await retryStart('broker', () => openBroker(config));
const pool = new pg.Pool({ connectionString: config.producerDbUrl, max: 4 });
pool.on('error', () => {});
const relay = createRelay(
  { kind: config.relay, batchSize: 200 },
  { pool, connectionString: config.producerDbUrl, broker },
);
await retryStart('relay', () => relay.start());
console.log('relay ready');
process.on('SIGTERM', async () => {
  await relay.stop();
  await broker.close();
  await pool.end();
  process.exit(0);
});
