import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TestIssuer } from '../testing/index.js';
import { AccessTokenVerifier, InvalidTokenError, KeySetUnavailableError } from './access-token.verifier.js';

let issuer: TestIssuer;

beforeAll(async () => {
  issuer = await TestIssuer.start({ alg: 'RS256' });
});
afterAll(async () => {
  await issuer.close();
});

const verifierFor = (options: Partial<ConstructorParameters<typeof AccessTokenVerifier>[0]> = {}) =>
  new AccessTokenVerifier({
    jwksUrl: issuer.jwksUrl,
    issuer: issuer.issuer,
    audience: issuer.audience,
    jwksCooldownMs: 0,
    ...options,
  });

async function reason(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidTokenError);
  return (error as InvalidTokenError).reason;
}

describe('AccessTokenVerifier against a real JWKS endpoint', () => {
  it('gives the principal of a valid token: subject, roles (from a nested claim) and scopes', async () => {
    const verifier = verifierFor({ rolesClaim: 'realm_access.roles' });
    const token = await issuer.token({
      subject: 'consumer-7',
      scopes: ['orders:read', 'orders:write'],
      claims: { realm_access: { roles: ['consumer'] } },
    });
    const principal = await verifier.verify(token);
    expect(principal).toMatchObject({
      subject: 'consumer-7',
      roles: ['consumer'],
      scopes: ['orders:read', 'orders:write'],
      issuer: issuer.issuer,
    });
  });

  it('caches the key set: many verifications, one fetch', async () => {
    const verifier = verifierFor();
    const before = issuer.jwksRequests;
    const token = await issuer.token();
    for (let i = 0; i < 20; i++) await verifier.verify(token);
    expect(issuer.jwksRequests - before).toBe(1);
  });

  it('follows key rotation: a token signed with a new key triggers one refetch and verifies', async () => {
    const verifier = verifierFor();
    await verifier.verify(await issuer.token());
    const before = issuer.jwksRequests;
    await issuer.rotate();
    const principal = await verifier.verify(await issuer.token({ subject: 'after-rotation' }));
    expect(principal.subject).toBe('after-rotation');
    expect(issuer.jwksRequests - before).toBe(1);
  });

  it('refuses tokens signed with a retired key once the key set no longer has it', async () => {
    const oldKid = issuer.currentKid;
    const oldToken = await issuer.token({ kid: oldKid });
    await issuer.rotate(true);
    const verifier = verifierFor();
    expect(await reason(verifier.verify(oldToken))).toBe('unknown-key');
  });

  it('allows the configured clock skew and no more', async () => {
    const slightlyExpired = await issuer.token({ expiresIn: -10 });
    expect((await verifierFor({ clockSkewSeconds: 30 }).verify(slightlyExpired)).subject).toBe('user-1');
    expect(await reason(verifierFor({ clockSkewSeconds: 5 }).verify(slightlyExpired))).toBe('expired');
  });

  it('checks issuer and audience', async () => {
    const verifier = verifierFor();
    expect(await reason(verifier.verify(await issuer.token({ issuer: 'https://evil.example' })))).toBe(
      'issuer',
    );
    expect(await reason(verifier.verify(await issuer.token({ audience: 'billing' })))).toBe('audience');
  });

  it('refuses garbage as malformed', async () => {
    expect(await reason(verifierFor().verify('not.a.jwt'))).toBe('malformed');
  });

  it('refuses to be configured with a symmetric or none algorithm', () => {
    expect(() => verifierFor({ algorithms: ['RS256', 'HS256'] })).toThrow(/AUTH_ALGORITHMS.*HS256/);
    expect(() => verifierFor({ algorithms: ['none'] })).toThrow(/AUTH_ALGORITHMS/);
  });

  it('reports an unreachable or broken JWKS endpoint as unavailable, not as a bad token', async () => {
    const broken = createServer((_req, res) => res.writeHead(500).end('down'));
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    const { port } = broken.address() as AddressInfo;
    try {
      const verifier = new AccessTokenVerifier({
        jwksUrl: `http://127.0.0.1:${port}/jwks`,
        audience: issuer.audience,
      });
      await expect(verifier.verify(await issuer.token())).rejects.toBeInstanceOf(KeySetUnavailableError);
    } finally {
      broken.close();
    }
  });

  it('answers a repeated token from its cache until the token expires or the cache time to live ends', async () => {
    const verifier = verifierFor({ cacheTtlMs: 60_000, clockSkewSeconds: 0 });
    const shortLived = await issuer.token({ subject: 'short', expiresIn: 10 });
    const longLived = await issuer.token({ subject: 'long', expiresIn: 3600 });
    expect(verifier.remembered(shortLived)).toBeUndefined();
    await verifier.verify(shortLived);
    await verifier.verify(longLived);
    expect(verifier.remembered(shortLived)?.subject).toBe('short');
    const now = Date.now();
    const clock = vi.spyOn(Date, 'now');
    try {
      clock.mockReturnValue(now + 11_000); // past the short token's expiry, within the time to live
      expect(verifier.remembered(shortLived)).toBeUndefined();
      expect(verifier.remembered(longLived)?.subject).toBe('long');
      clock.mockReturnValue(now + 61_000); // past the time to live: even a valid token is checked again
      expect(verifier.remembered(longLived)).toBeUndefined();
    } finally {
      clock.mockRestore();
    }
  });

  it('keeps at most cacheSize tokens, dropping the oldest', async () => {
    const verifier = verifierFor({ cacheSize: 2 });
    const tokens = await Promise.all(['a', 'b', 'c'].map((subject) => issuer.token({ subject })));
    for (const token of tokens) await verifier.verify(token);
    expect(tokens.map((token) => verifier.remembered(token)?.subject)).toEqual([undefined, 'b', 'c']);
  });

  it('does not answer a forged token that shares a cached token’s signature from the cache', async () => {
    const verifier = verifierFor();
    const token = await issuer.token({ subject: 'victim', roles: ['consumer'] });
    await verifier.verify(token);
    const [header, , signature] = token.split('.');
    const forgedClaims = {
      ...JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()),
      roles: ['admin'],
    };
    const forged = `${header}.${Buffer.from(JSON.stringify(forgedClaims)).toString('base64url')}.${signature}`;
    expect(verifier.remembered(forged)).toBeUndefined();
    expect(await reason(verifier.verify(forged))).toBe('signature');
    expect(verifier.remembered(token)?.subject).toBe('victim');
  });
});
