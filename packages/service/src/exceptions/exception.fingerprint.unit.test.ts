import { describe, expect, it } from 'vitest';
import { fingerprint } from './exception.fingerprint.js';

function thrownAt(message: string): Error {
  return new Error(message);
}

describe('exception fingerprints', () => {
  it('are equal for the same error thrown from the same place, whatever its message', () => {
    const errors = ['order 1 not found', 'order 2 not found'].map((m) => thrownAt(m));
    expect(fingerprint(errors[0])).toBe(fingerprint(errors[1]));
  });

  it('differ by error class and by place', () => {
    const a = thrownAt('x');
    const b = new TypeError('x');
    b.stack = a.stack?.replace(/^Error/, 'TypeError');
    expect(fingerprint(a)).not.toBe(fingerprint(b));
    const elsewhere = (() => new Error('x'))();
    expect(fingerprint(a)).not.toBe(fingerprint(elsewhere));
  });

  it('ignore line numbers, so a redeploy that shifts code keeps them', () => {
    const a = new Error('x');
    a.stack = 'Error: x\n    at handle (/app/src/orders.ts:10:5)\n    at run (/app/src/main.ts:3:1)';
    const b = new Error('x');
    b.stack = 'Error: x\n    at handle (/app/src/orders.ts:42:9)\n    at run (/app/src/main.ts:7:1)';
    expect(fingerprint(a)).toBe(fingerprint(b));
  });

  it('fall back to the message with ids masked when there is no stack', () => {
    const a = new Error('order 123e4567-e89b-12d3-a456-426614174000 failed after 3 tries');
    a.stack = undefined;
    const b = new Error('order 00000000-0000-0000-0000-000000000001 failed after 5 tries');
    b.stack = undefined;
    expect(fingerprint(a)).toBe(fingerprint(b));
    expect(fingerprint('a string thrown')).toMatch(/^[0-9a-f]{32}$/);
  });
});
