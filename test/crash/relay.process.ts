import { PollingRelay } from '@ferry/postgres';
import pg from 'pg';
import { openBroker, readConfig } from './crash-config.js';

/* A relay process for the crash test: runs until killed. */
const config = readConfig();
const broker = await openBroker(config);
const pool = new pg.Pool({ connectionString: config.producerDbUrl, max: 4 });
pool.on('error', () => {});
const relay = new PollingRelay({ pool, connectionString: config.producerDbUrl, broker, batchSize: 200 });
await relay.start();
console.log('relay ready');
process.on('SIGTERM', async () => {
  await relay.stop();
  await broker.close();
  await pool.end();
  process.exit(0);
});
