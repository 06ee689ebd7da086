import { describe, expect, it } from 'vitest';
import { assertSlotName, defaultSlotName, walLevelError } from './replication-slot.js';

describe('wal_level check', () => {
  it('refuses any level but logical, naming the setting and the fix', () => {
    expect(walLevelError('replica')?.message).toBe(
      'wal_level is "replica"; the tailing relay needs wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart)',
    );
    expect(walLevelError('minimal')?.message).toMatch(/^wal_level is "minimal"; .*wal_level = logical/);
  });

  it('accepts logical', () => {
    expect(walLevelError('logical')).toBeUndefined();
  });
});

describe('slot names', () => {
  it('derives one per database, folded to the characters slot names allow', () => {
    expect(defaultSlotName('orders')).toBe('ferry_outbox_orders');
    expect(defaultSlotName('Kitchen-Service')).toBe('ferry_outbox_kitchen_service');
  });

  it('keeps long names within 63 characters and distinct', () => {
    const a = defaultSlotName(`service_${'x'.repeat(60)}_a`);
    const b = defaultSlotName(`service_${'x'.repeat(60)}_b`);
    expect(a).toHaveLength(63);
    expect(a).not.toBe(b);
    expect(() => assertSlotName(a)).not.toThrow();
  });

  it('rejects a configured name the server would refuse, naming the setting', () => {
    expect(() => assertSlotName('Orders-Relay')).toThrow(/slotName "Orders-Relay" is invalid/);
    expect(() => assertSlotName('x'.repeat(64))).toThrow(/slotName/);
  });
});
