import { describe, expect, it } from 'vitest';
import { isMessageId, messageIdTime, newMessageId } from './message-id.js';

describe('message ids', () => {
  it('are unique UUIDv7 strings that sort in creation order, even within one millisecond', () => {
    const ids = Array.from({ length: 10_000 }, () => newMessageId());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids.slice(0, 10)) {
      expect(isMessageId(id)).toBe(true);
      expect(id[14]).toBe('7');
    }
  });

  it('carry their creation time', () => {
    const at = Date.UTC(2026, 10, 27, 12, 0, 0);
    expect(messageIdTime(newMessageId(at + 10_000))).toBe(at + 10_000);
  });
});
