import { randomUUID } from 'node:crypto';
import { base64url, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { problemType } from '../errors/problem.js';
import type { Service } from '../runtime/service.js';
import { bearer, call } from '../test-support/http.js';
import { startSample } from '../test-support/sample.service.js';
import { type LogCapture, TestIssuer } from '../testing/index.js';

let issuer: TestIssuer;
let service: Service;
let logs: LogCapture;
let token: string;

beforeAll(async () => {
  issuer = await TestIssuer.start();
  ({ service, logs } = await startSample({ ...issuer.settings(), BODY_LIMIT_BYTES: '1024' }));
  token = await issuer.token({ roles: ['consumer'] });
});

afterAll(async () => {
  await service?.stop();
  await issuer?.close();
});

const validOrder = () => ({
  consumerId: randomUUID(),
  restaurantId: randomUUID(),
  lineItems: [{ menuItemId: 'pizza', quantity: 2 }],
});

async function post(body: string, headers: Record<string, string> = {}) {
  return call(`${service.url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(token), ...headers },
    body,
  });
}

function expectProblem(res: Awaited<ReturnType<typeof call>>, status: number, slug: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body.type).toBe(problemType(slug));
  expect(res.body.status).toBe(status);
  expect(typeof res.body.title).toBe('string');
}

describe('bad input against a sample service', () => {
  it('accepts a valid order (the baseline the other cases break)', async () => {
    const res = await post(JSON.stringify(validOrder()));
    expect(res.status).toBe(201);
    expect(res.body.orderId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('malformed JSON is 400 malformed-body', async () => {
    expectProblem(await post('{"consumerId": '), 400, 'malformed-body');
  });

  it('an empty JSON body is 400 malformed-body', async () => {
    expectProblem(await post(''), 400, 'malformed-body');
  });

  it('a wrong content type is 415 unsupported-media-type', async () => {
    expectProblem(
      await post('consumerId=1', { 'content-type': 'application/x-www-form-urlencoded' }),
      415,
      'unsupported-media-type',
    );
  });

  it('a body over the limit is 413 payload-too-large', async () => {
    const big = {
      ...validOrder(),
      lineItems: Array.from({ length: 100 }, () => ({ menuItemId: 'x'.repeat(20), quantity: 1 })),
    };
    expectProblem(await post(JSON.stringify(big)), 413, 'payload-too-large');
  });

  it('unknown fields are 400 validation, naming the field', async () => {
    const res = await post(JSON.stringify({ ...validOrder(), discount: 100 }));
    expectProblem(res, 400, 'validation');
    expect(res.body.errors[0]).toMatchObject({ in: 'body' });
    expect(res.body.detail).toContain('discount');
  });

  it('a missing field and a wrong type are 400 validation with a path each', async () => {
    const { lineItems: _, ...missing } = validOrder();
    const res = await post(JSON.stringify({ ...missing, consumerId: 42 }));
    expectProblem(res, 400, 'validation');
    const paths = res.body.errors.map((e: { path: string }) => e.path).sort();
    expect(paths).toEqual(['consumerId', 'lineItems']);
  });

  it('an invalid id in the path is 400 validation in params', async () => {
    const res = await call(`${service.url}/orders/not-a-uuid`, { headers: bearer(token) });
    expectProblem(res, 400, 'validation');
    expect(res.body.errors[0]).toMatchObject({ in: 'params', path: 'orderId' });
  });

  it('an unknown id is 404 not-found', async () => {
    expectProblem(
      await call(`${service.url}/orders/${randomUUID()}`, { headers: bearer(token) }),
      404,
      'not-found',
    );
  });

  it('an unknown route is 404 not-found', async () => {
    expectProblem(await call(`${service.url}/nowhere`), 404, 'not-found');
  });

  it('a missing token is 401 unauthorized with WWW-Authenticate', async () => {
    const res = await call(`${service.url}/hello`);
    expectProblem(res, 401, 'unauthorized');
    expect(res.headers['www-authenticate']).toBe('Bearer');
  });

  it('a non-bearer Authorization header is 401 invalid-token', async () => {
    expectProblem(
      await call(`${service.url}/hello`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } }),
      401,
      'invalid-token',
    );
  });

  it('a forged token (signature by another key) is 401 invalid-token', async () => {
    const forger = await TestIssuer.start({ issuer: issuer.issuer, audience: issuer.audience });
    try {
      const forged = await forger.token({ roles: ['consumer'], kid: forger.currentKid });
      const res = await call(`${service.url}/hello`, { headers: bearer(forged) });
      expectProblem(res, 401, 'invalid-token');
    } finally {
      await forger.close();
    }
  });

  it('a tampered payload is 401 invalid-token (signature)', async () => {
    const [h, , s] = token.split('.');
    const payload = base64url.encode(
      JSON.stringify({ sub: 'admin', roles: ['admin'], exp: Math.floor(Date.now() / 1000) + 60 }),
    );
    const res = await call(`${service.url}/hello`, { headers: bearer(`${h}.${payload}.${s}`) });
    expectProblem(res, 401, 'invalid-token');
    expect(res.body.reason).toBe('signature');
  });

  it('an expired token is 401 invalid-token (expired)', async () => {
    const expired = await issuer.token({ expiresIn: -120 });
    const res = await call(`${service.url}/hello`, { headers: bearer(expired) });
    expectProblem(res, 401, 'invalid-token');
    expect(res.body.reason).toBe('expired');
    expect(res.headers['www-authenticate']).toContain('invalid_token');
  });

  it('a token for another audience is 401 invalid-token (audience)', async () => {
    const res = await call(`${service.url}/hello`, {
      headers: bearer(await issuer.token({ audience: 'other-service' })),
    });
    expectProblem(res, 401, 'invalid-token');
    expect(res.body.reason).toBe('audience');
  });

  it('an alg:none token is 401 invalid-token (algorithm)', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(
      JSON.stringify({
        sub: 'x',
        iss: issuer.issuer,
        aud: issuer.audience,
        exp: Math.floor(Date.now() / 1000) + 60,
      }),
    );
    const res = await call(`${service.url}/hello`, { headers: bearer(`${header}.${payload}.`) });
    expectProblem(res, 401, 'invalid-token');
    expect(res.body.reason).toBe('algorithm');
  });

  it('an HS256 token signed with a secret is 401 invalid-token (algorithm confusion)', async () => {
    const hs = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256', kid: issuer.currentKid })
      .setSubject('attacker')
      .setIssuer(issuer.issuer)
      .setAudience(issuer.audience)
      .setExpirationTime('1m')
      .sign(new TextEncoder().encode('a-guessed-or-public-secret-value-32b'));
    const res = await call(`${service.url}/hello`, { headers: bearer(hs) });
    expectProblem(res, 401, 'invalid-token');
    expect(res.body.reason).toBe('algorithm');
  });

  it('a valid token without the role is 403 forbidden', async () => {
    const res = await post(JSON.stringify(validOrder()), bearer(await issuer.token({ roles: ['courier'] })));
    expectProblem(res, 403, 'forbidden');
  });

  it('an unexpected failure is 500 internal without internals, with fingerprint and trace id', async () => {
    const res = await call(`${service.url}/boom`);
    expectProblem(res, 500, 'internal');
    expect(res.text).not.toContain('flux capacitor');
    expect(res.body.fingerprint).toMatch(/^[0-9a-f]{32}$/);
    expect(res.body.traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('logs none of the bad inputs as an error; only the deliberate 500 is', async () => {
    const errors = logs.errors();
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toContain('flux capacitor');
    const requests = logs.find('request');
    expect(requests.some((l) => l.status === 413)).toBe(true);
    expect(JSON.stringify(logs.lines)).not.toContain(token);
  });
});
