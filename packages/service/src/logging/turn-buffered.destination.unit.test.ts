import { setImmediate as endOfTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { TurnBufferedDestination } from './turn-buffered.destination.js';

function recording() {
  const writes: string[] = [];
  return {
    writes,
    destination: new TurnBufferedDestination({ write: (bytes) => writes.push(bytes.toString()) }),
  };
}

describe('TurnBufferedDestination', () => {
  it('writes the lines of one turn together, in order, when the turn ends', async () => {
    const { writes, destination } = recording();
    destination.write('{"n":1}\n');
    destination.write('{"n":2}\n');
    expect(writes).toEqual([]);
    await endOfTurn();
    expect(writes).toEqual(['{"n":1}\n{"n":2}\n']);
    destination.write('{"n":3}\n');
    await endOfTurn();
    expect(writes).toEqual(['{"n":1}\n{"n":2}\n', '{"n":3}\n']);
  });

  it('writes at once on flush, and then has nothing left for the end of the turn', async () => {
    const { writes, destination } = recording();
    destination.write('a\n');
    const flushed = new Promise<void>((resolve) => destination.flush(() => resolve()));
    expect(writes).toEqual(['a\n']);
    await flushed;
    await endOfTurn();
    expect(writes).toEqual(['a\n']);
  });

  it('does not hold more than 64 KiB of lines', () => {
    const { writes, destination } = recording();
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 65; i++) destination.write(line);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toHaveLength(65 * 1024);
  });

  it('hands a failed write to the flush callback', () => {
    const destination = new TurnBufferedDestination({
      write: () => {
        throw new Error('EPIPE');
      },
    });
    destination.write('a\n');
    let failure: Error | undefined;
    destination.flush((error) => {
      failure = error;
    });
    expect(failure?.message).toBe('EPIPE');
  });
});
