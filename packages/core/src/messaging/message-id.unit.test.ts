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
    // Later than every id made before: ids never go back in time, so an earlier time would not show.
    // (A fixed date here failed once the clock passed it.)
    const at = Date.now() + 60_000;
    expect(messageIdTime(newMessageId(at))).toBe(at);
  });

  it('never go back in time: an id made with an earlier clock still sorts after the last one', () => {
    const later = newMessageId(Date.now() + 120_000);
    const earlier = newMessageId(Date.now());
    expect(earlier > later).toBe(true);
  });
});
