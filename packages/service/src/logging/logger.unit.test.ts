import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { TurnBatchedDestination } from './logger.js';

describe('TurnBatchedDestination', () => {
  it('hands the lines of one event-loop turn to its destination as one write', async () => {
    const writes: string[] = [];
    const destination = new TurnBatchedDestination({ write: (chunk: string) => void writes.push(chunk) });
    destination.write('a\n');
    destination.write('b\n');
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    destination.write('c\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual(['a\nb\n', 'c\n']);
  });

  it('writes what it gathered when the process exits in the same turn', () => {
    const script = `
      import { pino } from 'pino';
      import { TurnBatchedDestination } from ${JSON.stringify(new URL('./logger.ts', import.meta.url).pathname)};
      const logger = pino({}, new TurnBatchedDestination(pino.destination({ dest: 1, sync: false })));
      logger.info('last words'); // info: pino flushes a fatal line itself
      process.exit(3);`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(3);
    expect(run.stdout).toContain('"msg":"last words"');
  });
});
