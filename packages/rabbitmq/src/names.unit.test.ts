import { describe, expect, it } from 'vitest';
import { TopologyNames } from './names.js';

describe('topology names', () => {
  const names = new TopologyNames('ferry');

  it('names exchanges and queues unambiguously and reads partition queues back', () => {
    expect(names.channelExchange('order.events')).toBe('ferry:order.events.v2');
    expect(names.partitionCountQueue('order.events')).toBe('ferry:order.events.v2:partitions');
    expect(names.partitionQueue('order.events', 'kitchen', 3)).toBe('ferry:order.events:kitchen:3');
    expect(names.rosterQueue('order.events', 'kitchen')).toBe('ferry:order.events:kitchen:members');
    expect(names.parsePartitionQueue('ferry:order.events:kitchen:3')).toEqual({
      channel: 'order.events',
      group: 'kitchen',
      index: 3,
    });
    expect(names.parsePartitionQueue('other:order.events:kitchen:3')).toBeUndefined();
    expect(names.parsePartitionQueue(names.partitionCountQueue('order.events'))).toBeUndefined();
    expect(names.parsePartitionQueue(names.rosterQueue('order.events', 'kitchen'))).toBeUndefined();
  });

  it('rejects names with the separator, empty names and names over 255 bytes', () => {
    expect(() => names.channelExchange('a:b')).toThrow(/must not contain ':'/);
    expect(() => names.partitionQueue('a', '', 0)).toThrow(/must not be empty/);
    expect(() => names.channelExchange('c'.repeat(260))).toThrow(/longer than 255 bytes/);
  });
});
