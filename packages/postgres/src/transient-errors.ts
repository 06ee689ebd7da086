/** SQLSTATE codes worth retrying: the statement may succeed later, through no change of the message. */
const TRANSIENT_SQLSTATES = new Set([
  '40001',
  '40P01',
  '53300',
  '55P03',
  '57P01',
  '57P02',
  '57P03',
  '58000',
  '58030',
]);
const TRANSIENT_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  // A Unix socket's file is gone while its server restarts.
  'ENOENT',
]);
const TRANSIENT_MESSAGES = [
  /Connection terminated/i,
  /connection error/i,
  /timeout exceeded when trying to connect/i,
];

/**
 * Whether an error from node-postgres is an infrastructure failure that retrying can fix: a lost
 * or refused connection, the server shutting down or starting, a serialisation failure or a
 * deadlock. Message consumers retry these without counting an attempt, so a database restart
 * never dead-letters good messages.
 */
export function isTransientPgError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code.startsWith('08') || TRANSIENT_SQLSTATES.has(code) || TRANSIENT_NODE_CODES.has(code)) return true;
  }
  if (TRANSIENT_MESSAGES.some((pattern) => pattern.test(error.message))) return true;
  return error.cause !== undefined && error.cause !== error && isTransientPgError(error.cause);
}
