import { describe, expect, it } from 'vitest';
import { isTransientPgError } from './transient-errors.js';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isTransientPgError', () => {
  it.each([
    ['admin shutdown', pgError('57P01', 'terminating connection due to administrator command')],
    ['the server starting up', pgError('57P03', 'the database system is starting up')],
    ['a connection exception', pgError('08006')],
    ['a refused connection', pgError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')],
    [
      'a Unix socket gone while its server restarts',
      pgError('ENOENT', 'connect ENOENT /tmp/x/.s.PGSQL.5432'),
    ],
    ['a deadlock', pgError('40P01')],
    ['a terminated connection', new Error('Connection terminated unexpectedly')],
  ])('retries %s', (_name, error) => {
    expect(isTransientPgError(error)).toBe(true);
  });

  it.each([
    ['a unique violation', pgError('23505')],
    ['a check violation', pgError('23514')],
    ['a plain error', new Error('order total is negative')],
    ['a non-error', 'boom'],
  ])('does not retry %s', (_name, error) => {
    expect(isTransientPgError(error)).toBe(false);
  });
});
