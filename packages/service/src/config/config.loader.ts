import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigError, type SettingIssue } from './config.error.js';

/** Settings as they arrive from a source: names to strings. */
export type RawSettings = Record<string, string>;

/** Where the raw settings come from, lowest precedence first. */
export interface ConfigLayers {
  /** Defaults for tests and examples, under everything else. */
  readonly defaults?: RawSettings;
  /** A JSON file of settings (flat object); `CONFIG_FILE` names it when not given here. */
  readonly file?: string | undefined;
  /** The environment; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The configuration service's settings, over all others. */
  readonly remote?: RawSettings | undefined;
}

/**
 * Merges the layers into one set of raw settings: defaults < file < environment < configuration
 * service. Empty strings count as unset, and `<NAME>_FILE` supplies `<NAME>` from a file's
 * content (how Docker and Kubernetes mount secrets).
 */
export function mergeLayers(names: readonly string[], layers: ConfigLayers): RawSettings {
  const env = layers.env ?? process.env;
  const merged: RawSettings = { ...layers.defaults };
  const fileName = layers.file ?? env.CONFIG_FILE ?? layers.defaults?.CONFIG_FILE;
  if (fileName) Object.assign(merged, readSettingsFile(fileName));
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value !== '') merged[name] = value;
  }
  Object.assign(merged, layers.remote);
  for (const name of names) {
    const path = merged[`${name}_FILE`];
    if (merged[name] === undefined && path) merged[name] = readSecretFile(name, path);
  }
  for (const [name, value] of Object.entries(merged)) if (value === '') delete merged[name];
  return merged;
}

/**
 * Parses raw settings with `schema`; on failure throws {@link ConfigError} naming each bad
 * variable and what is wrong, never its value.
 */
export function parseSettings<S extends z.ZodType>(schema: S, raw: RawSettings): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issues: SettingIssue[] = result.error.issues.map((issue) => ({
    variable: issue.path.length > 0 ? issue.path.join('.') : '(configuration)',
    message:
      issue.code === 'invalid_type' && issue.path.length > 0 && raw[String(issue.path[0])] === undefined
        ? 'is required'
        : issue.message,
  }));
  throw new ConfigError(issues);
}

function readSettingsFile(path: string): RawSettings {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError([
      { variable: 'CONFIG_FILE', message: `cannot read ${path}: ${(error as Error).message}` },
    ]);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError([
      { variable: 'CONFIG_FILE', message: `${path} must hold a JSON object of settings` },
    ]);
  return toRaw(parsed as Record<string, unknown>);
}

function readSecretFile(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new ConfigError([
      { variable: `${name}_FILE`, message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code}` },
    ]);
  }
}

/** Turns a JSON object of settings into strings, as the environment gives them. */
export function toRaw(values: Record<string, unknown>): RawSettings {
  const raw: RawSettings = {};
  for (const [name, value] of Object.entries(values)) {
    if (value === null || value === undefined) continue;
    raw[name] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return raw;
}
