import { Writable } from 'node:stream';

/** A log destination that keeps every line, parsed, for assertions. */
export class LogCapture extends Writable {
  readonly lines: Record<string, unknown>[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    for (const line of chunk.toString('utf8').split('\n'))
      if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    callback();
  }

  /** Lines whose `msg` matches. */
  find(msg: string | RegExp): Record<string, unknown>[] {
    return this.lines.filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))));
  }

  /** Lines at `error` level or above. */
  errors(): Record<string, unknown>[] {
    return this.lines.filter((l) => l.level === 'error' || l.level === 'fatal');
  }
}
