import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createService } from '../runtime/create-service.js';
import { testSettings } from '../test-support/sample.service.js';
import { LogCapture } from '../testing/index.js';
import { ConfigError } from './config.error.js';
import { reloadable, secret } from './config.markers.js';

const own = z.object({
  ORDER_MINIMUM: reloadable(z.coerce.number().positive().default(10)),
  PAYMENT_API_KEY: secret(z.string().min(8)),
});

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function configError(env: Record<string, string>): Promise<ConfigError> {
  const error = await createService({ name: 'cfg', config: own, configLayers: { env } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe('configuration at start-up', () => {
  it('stops start-up naming a missing setting and a bad one', async () => {
    const error = await configError({ PORT: 'http', AUTH_MODE: 'none' });
    expect(error.issues.map((i) => i.variable).sort()).toEqual(['PAYMENT_API_KEY', 'PORT']);
    expect(error.message).toContain('PAYMENT_API_KEY: is required');
  });

  it('stops start-up naming the variable a cross-setting rule needs', async () => {
    const error = await configError({ AUTH_MODE: 'jwt', PAYMENT_API_KEY: 'long-enough' });
    expect(error.issues).toEqual([
      { variable: 'AUTH_JWKS_URL', message: expect.stringContaining('required when AUTH_MODE=jwt') },
    ]);
  });

  it('reads a JSON settings file under the environment, and secrets from *_FILE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-cfg-'));
    writeFileSync(
      join(dir, 'settings.json'),
      JSON.stringify({ ORDER_MINIMUM: 30, AUTH_MODE: 'none', PORT: 1 }),
    );
    writeFileSync(join(dir, 'api-key'), 'from-a-mounted-secret\n');
    const logs = new LogCapture();
    const service = await createService({
      name: 'cfg',
      config: own,
      logDestination: logs,
      configLayers: {
        env: {
          ...testSettings(),
          CONFIG_FILE: join(dir, 'settings.json'),
          PAYMENT_API_KEY_FILE: join(dir, 'api-key'),
        },
      },
    });
    const settings = service.context.config.current;
    expect(settings.ORDER_MINIMUM).toBe(30);
    expect(settings.PORT).toBe(0);
    expect(settings.PAYMENT_API_KEY.reveal()).toBe('from-a-mounted-secret');
    service.logger.info({ settings }, 'settings');
    expect(JSON.stringify(logs.lines)).not.toContain('from-a-mounted-secret');
  });

  it('names the *_FILE variable when its file cannot be read', async () => {
    const error = await configError({ AUTH_MODE: 'none', PAYMENT_API_KEY_FILE: '/nonexistent/secret' });
    expect(error.issues[0]).toMatchObject({ variable: 'PAYMENT_API_KEY_FILE' });
  });

  it('pulls settings from a configuration service and live-reloads the reloadable ones', async () => {
    let remote: Record<string, unknown> = {
      ORDER_MINIMUM: 15,
      PAYMENT_API_KEY: 'remote-key-1',
      LOG_LEVEL: 'info',
    };
    let version = 1;
    let notModified = 0;
    const server: Server = createServer((req, res) => {
      if (req.headers['if-none-match'] === `"v${version}"`) {
        notModified++;
        res.writeHead(304).end();
        return;
      }
      res
        .writeHead(200, { 'content-type': 'application/json', etag: `"v${version}"` })
        .end(JSON.stringify(remote));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    const logs = new LogCapture();
    const service = await createService({
      name: 'cfg',
      config: own,
      logDestination: logs,
      configLayers: {
        env: testSettings({
          AUTH_MODE: 'none',
          CONFIG_URL: `http://127.0.0.1:${port}/cfg`,
          CONFIG_POLL_MS: '100',
        }),
      },
    });
    cleanup.push(() => service.stop());
    const config = service.context.config;
    expect(config.current.ORDER_MINIMUM).toBe(15);
    const changes: number[] = [];
    service.context.config.onChange((next) =>
      changes.push((next as unknown as { ORDER_MINIMUM: number }).ORDER_MINIMUM),
    );
    await service.start();
    await waitFor(() => notModified > 0);
    remote = { ...remote, ORDER_MINIMUM: 40, PORT: 9, LOG_LEVEL: 'warn' };
    version = 2;
    await waitFor(() => changes.length > 0);
    expect(changes).toEqual([40]);
    expect(config.current.ORDER_MINIMUM).toBe(40);
    expect(config.current.PORT).toBe(0);
    expect(service.logger.level).toBe('warn');
    expect(logs.find('changed settings need a restart')[0]?.settings).toEqual(['PORT']);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
