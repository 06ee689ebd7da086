import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError } from './config.error.js';
import { mergeLayers, parseSettings } from './config.loader.js';
import { reloadable, secret } from './config.markers.js';
import { LiveConfig } from './live-config.js';
import { Secret } from './secret.js';

const schema = z.object({
  PORT: z.coerce.number().int().default(8080),
  ORDER_MINIMUM: reloadable(z.coerce.number().positive().default(10)),
  API_KEY: secret(z.string().min(8)),
  REGION: z.string().default('eu'),
});

describe('configuration', () => {
  it('layers defaults < environment < configuration service, ignoring empty values', () => {
    const raw = mergeLayers(Object.keys(schema.shape), {
      defaults: { PORT: '1', REGION: 'us' },
      env: { PORT: '2', REGION: '' },
      remote: { PORT: '3' },
    });
    expect(raw).toMatchObject({ PORT: '3', REGION: 'us' });
  });

  it('names every bad or missing variable and never its value', () => {
    let error: unknown;
    try {
      parseSettings(schema, { PORT: 'eighty', API_KEY: 'short' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { issues, message } = error as ConfigError;
    expect(issues.map((i) => i.variable).sort()).toEqual(['API_KEY', 'PORT']);
    expect(message).toMatch(/^invalid configuration: /);
    expect(message).not.toContain('short');
    expect(parseSettings.bind(null, schema, { API_KEY: undefined as never })).toThrow(/API_KEY: is required/);
  });

  it('wraps secrets so they print as [secret] in JSON, strings and inspection', () => {
    const settings = parseSettings(schema, { API_KEY: 'super-secret-value' });
    expect(settings.API_KEY).toBeInstanceOf(Secret);
    expect(settings.API_KEY.reveal()).toBe('super-secret-value');
    const shown = [JSON.stringify(settings), String(settings.API_KEY), inspect(settings)].join(' ');
    expect(shown).not.toContain('super-secret-value');
    expect(shown).toContain('[secret]');
  });

  it('reloads reloadable settings, tells listeners, and leaves others for a restart', () => {
    const config = new LiveConfig<z.output<typeof schema>>(schema, { env: { API_KEY: 'abcdefghij' } });
    const seen: unknown[] = [];
    config.onChange((next, changed) => seen.push([next.ORDER_MINIMUM, changed]));
    const result = config.reload({ ORDER_MINIMUM: '25', PORT: '9999' });
    expect(result).toEqual({ applied: ['ORDER_MINIMUM'], needRestart: ['PORT'] });
    expect(config.current.ORDER_MINIMUM).toBe(25);
    expect(config.current.PORT).toBe(8080);
    expect(seen).toEqual([[25, ['ORDER_MINIMUM']]]);
  });

  it('refuses an invalid reload whole and keeps the settings in force', () => {
    const config = new LiveConfig<z.output<typeof schema>>(schema, { env: { API_KEY: 'abcdefghij' } });
    expect(() => config.reload({ ORDER_MINIMUM: '-5' })).toThrow(/ORDER_MINIMUM/);
    expect(config.current.ORDER_MINIMUM).toBe(10);
  });
});
