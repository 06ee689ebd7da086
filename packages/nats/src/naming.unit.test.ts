import { describe, expect, it } from 'vitest';
import {
  checkNamespace,
  consumerName,
  deadLetterSubject,
  encodeToken,
  messageSubject,
  streamName,
  streamSubjects,
} from './naming.js';

describe('NATS naming', () => {
  it('keeps plain tokens and encodes everything else injectively', () => {
    expect(encodeToken('kitchenService')).toBe('kitchenService');
    expect(encodeToken('a-b')).toBe('a-b');
    expect(encodeToken('a_b')).toBe('a_5fb');
    expect(encodeToken('a b*>')).toBe('a_20b_2a_3e');
    expect(encodeToken('zü')).toBe('z_c3_bc');
    expect(encodeToken('')).toBe('_');
    expect(encodeToken('_dlq')).not.toBe('_dlq');
  });

  it('lays a channel out as subject tokens plus the partition', () => {
    expect(messageSubject('ferry', 'Order', 7)).toBe('ferry.Order.7');
    expect(messageSubject('ferry', 'contract.lx3ab12x', 0)).toBe('ferry.contract.lx3ab12x.0');
    // `contract` partition 7 and channel `contract.7` partition 3 never share a subject.
    expect(messageSubject('ferry', 'contract', 7)).not.toBe(messageSubject('ferry', 'contract.7', 3));
  });

  it('puts a channel family in one stream', () => {
    expect(streamName('ferry', 'contract.lx3ab12x')).toBe('ferry_contract');
    expect(streamName('ferry', 'Order')).toBe('ferry_Order');
    expect(streamSubjects('ferry', 'contract.abc')).toEqual(['ferry.contract.>']);
    expect(deadLetterSubject('ferry', 'kitchen', 'Order')).toBe('ferry._dlq.kitchen.Order');
  });

  it('names consumers per group, channel and partition, without collisions', () => {
    const name = consumerName('kitchen-service', 'Order', 3);
    expect(name).toMatch(/^kitchen-service-[0-9a-f]{12}-p3$/);
    expect(consumerName('kitchen', 'Order.x', 3)).not.toBe(consumerName('kitchen', 'Order_x', 3));
    expect(consumerName('a.b', 'c', 0)).not.toMatch(/[.*> ]/);
  });

  it('refuses a namespace that is not a plain token', () => {
    expect(() => checkNamespace('ferry')).not.toThrow();
    expect(() => checkNamespace('my.ns')).toThrow(/namespace/);
  });
});
