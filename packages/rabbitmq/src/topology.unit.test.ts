import { describe, expect, it } from 'vitest';
import { PartitionCountMismatchError, partitionCountMismatch } from './topology.js';

/** An amqplib channel error as RabbitMQ words it (3.10). */
function refused(message: string): Error {
  return Object.assign(
    new Error(`Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "${message}"`),
    { code: 406 },
  );
}

describe('partition count mismatch', () => {
  it('reads both counts from RabbitMQ’s refusal of the partition-count queue and names the channel', () => {
    const error = partitionCountMismatch(
      refused(
        "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'ferry:orders.v2:partitions' in vhost '/': received '4' but current is '8'",
      ),
      'orders',
      4,
    );
    expect(error).toBeInstanceOf(PartitionCountMismatchError);
    expect(error?.message).toBe(
      'channel orders has 8 partitions, but this broker is configured with partitions: 4; ' +
        'every publisher and consumer group of a channel must use the same number of partitions',
    );
    expect(error).toMatchObject({ channel: 'orders', partitions: 4, existing: 8 });
  });

  it('still reports a mismatch when RabbitMQ words the current value differently', () => {
    const error = partitionCountMismatch(
      refused(
        "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received '4' but current is none",
      ),
      'orders',
      4,
    );
    expect(error?.message).toMatch(/^channel orders has another number of partitions, but .* partitions: 4;/);
    expect(error?.existing).toBeUndefined();
  });

  it('leaves other refusals alone', () => {
    const type = refused(
      "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received 'quorum' but current is 'classic'",
    );
    expect(partitionCountMismatch(type, 'orders', 4)).toBeUndefined();
    expect(partitionCountMismatch(new Error("inequivalent arg 'x-max-length' for queue"), 'orders', 4)).toBe(
      undefined,
    );
  });
});
