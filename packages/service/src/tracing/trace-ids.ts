import { randomFillSync } from 'node:crypto';
import type { IdGenerator } from '@opentelemetry/sdk-trace-base';

const POOL_BYTES = 4096;
const ZERO_SPAN_ID = '0'.repeat(16);
const ZERO_TRACE_ID = '0'.repeat(32);

/**
 * Trace and span ids cut from a block of random bytes hex-encoded at once: one `randomFillSync`
 * and one hex encoding per 256 spans, where OpenTelemetry's RandomIdGenerator makes a native
 * hex call for every id (and draws from Math.random, not a cryptographic source). The W3C
 * all-zero id, invalid, is never returned.
 */
export class PooledIdGenerator implements IdGenerator {
  readonly #bytes = Buffer.allocUnsafe(POOL_BYTES);
  #hex = '';
  #offset = 0;

  generateTraceId(): string {
    const id = this.#take(32);
    return id === ZERO_TRACE_ID ? this.generateTraceId() : id;
  }

  generateSpanId(): string {
    const id = this.#take(16);
    return id === ZERO_SPAN_ID ? this.generateSpanId() : id;
  }

  #take(chars: number): string {
    if (this.#offset + chars > this.#hex.length) {
      randomFillSync(this.#bytes);
      this.#hex = this.#bytes.toString('hex');
      this.#offset = 0;
    }
    const id = this.#hex.substring(this.#offset, this.#offset + chars);
    this.#offset += chars;
    return id;
  }
}
