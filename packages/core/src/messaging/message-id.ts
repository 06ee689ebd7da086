/**
 * Time-sortable unique ids (UUID version 7, RFC 9562): 48 bits of Unix milliseconds, then a
 * 12-bit counter that keeps ids made in the same millisecond in order, then 62 random bits.
 * Hand-written because core imports no node:* module; it uses the Web Crypto global.
 */

let lastMs = 0;
let counter = 0;

/** Random bytes drawn from the Web Crypto source in blocks: one call per 256 ids, not two per id. */
const pool = new Uint8Array(4096);
let poolOffset = pool.length;

function random16(): Uint8Array {
  if (poolOffset + 16 > pool.length) {
    globalThis.crypto.getRandomValues(pool);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  return bytes;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** A new message id: a UUIDv7 string that sorts by creation time within this process. */
export function newMessageId(now: number = Date.now()): string {
  const bytes = random16();
  if (now > lastMs) {
    lastMs = now;
    counter = bytes[7]! & 0x7f; // leave room to count up within the millisecond
  } else {
    counter++;
    if (counter > 0xfff) {
      // 4096 ids in one millisecond: borrow the next millisecond so order holds.
      lastMs++;
      counter = 0;
    }
  }
  const ms = lastMs;
  const h = HEX;
  return (
    h[Math.floor(ms / 2 ** 40) & 0xff]! +
    h[Math.floor(ms / 2 ** 32) & 0xff]! +
    h[(ms >>> 24) & 0xff]! +
    h[(ms >>> 16) & 0xff]! +
    '-' +
    h[(ms >>> 8) & 0xff]! +
    h[ms & 0xff]! +
    '-' +
    h[0x70 | ((counter >>> 8) & 0x0f)]! +
    h[counter & 0xff]! +
    '-' +
    h[0x80 | (bytes[8]! & 0x3f)]! +
    h[bytes[9]!]! +
    '-' +
    h[bytes[10]!]! +
    h[bytes[11]!]! +
    h[bytes[12]!]! +
    h[bytes[13]!]! +
    h[bytes[14]!]! +
    h[bytes[15]!]!
  );
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string has the shape of a UUID (any version). */
export function isMessageId(value: string): boolean {
  return UUID.test(value);
}

/** The Unix milliseconds encoded in a UUIDv7. */
export function messageIdTime(id: string): number {
  const hex = id.replaceAll('-', '').slice(0, 12);
  return Number.parseInt(hex, 16);
}
