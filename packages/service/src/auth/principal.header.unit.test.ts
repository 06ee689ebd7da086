import { describe, expect, it } from 'vitest';
import { PRINCIPAL_HEADER, principalFromHeaders, principalHeaders } from './principal.header.js';

describe('the principal message header', () => {
  it('round-trips subject, roles, scopes and issuer, but never the token or other claims', () => {
    const extra = principalHeaders({
      subject: 'consumer-1',
      roles: ['consumer'],
      scopes: ['orders:write'],
      issuer: 'https://auth',
      claims: { email: 'a@b.c' },
    });
    expect(Object.keys(extra)).toEqual([PRINCIPAL_HEADER]);
    expect(extra.principal).not.toContain('a@b.c');
    expect(principalFromHeaders({ extra })).toEqual({
      subject: 'consumer-1',
      roles: ['consumer'],
      scopes: ['orders:write'],
      issuer: 'https://auth',
    });
  });

  it('gives nothing for no principal, and undefined for a missing or malformed header', () => {
    expect(principalHeaders(undefined)).toEqual({});
    expect(principalFromHeaders({})).toBeUndefined();
    expect(principalFromHeaders({ extra: { principal: '{not json' } })).toBeUndefined();
    expect(
      principalFromHeaders({ extra: { principal: '{"sub":1,"roles":[],"scopes":[]}' } }),
    ).toBeUndefined();
    expect(
      principalFromHeaders({ extra: { principal: '{"sub":"x","roles":"admin","scopes":[]}' } }),
    ).toBeUndefined();
  });
});
