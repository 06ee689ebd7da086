import { createHash } from 'node:crypto';

const FRAME = /^\s*at (?:(.+?) \()?(.+?):\d+:\d+\)?$/;
const VOLATILE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|0x[0-9a-f]+|\d+/gi;

/**
 * A stable id for "the same error": its class and the top frames of its stack (function and
 * file, without line numbers, so a redeploy that shifts lines keeps the id), or, without a
 * stack, its message with ids and numbers masked.
 */
export function fingerprint(error: unknown): string {
  const err = error instanceof Error ? error : new Error(String(error));
  const frames = (err.stack ?? '')
    .split('\n')
    .slice(1)
    .map((line) => FRAME.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .filter((match) => !match[2]!.includes('node_modules') && !match[2]!.startsWith('node:'))
    .slice(0, 5)
    .map((match) => `${match[1] ?? '<anonymous>'}@${match[2]!.replace(/^.*\/(?=[^/]+\/[^/]+$)/, '')}`);
  const basis = frames.length > 0 ? frames.join('|') : err.message.replace(VOLATILE, '#');
  return createHash('sha256').update(`${err.name}|${basis}`).digest('hex').slice(0, 32);
}
