import type { z } from 'zod';
import { type ConfigLayers, mergeLayers, parseSettings, type RawSettings } from './config.loader.js';
import { isReloadable } from './config.markers.js';

/** What a reload did. */
export interface ReloadResult {
  /** Reloadable settings whose new values are now in force. */
  readonly applied: readonly string[];
  /** Changed settings that need a restart, left at their old values. */
  readonly needRestart: readonly string[];
}

/** Called after reloadable settings changed. */
export type ConfigListener<T> = (next: T, changed: readonly string[]) => void;

/**
 * The service's validated configuration. Settings marked {@link reloadable} change in place when
 * the configuration service changes them; a change to any other setting is reported as needing a
 * restart and not applied, and an invalid change is refused whole.
 */
export class LiveConfig<T extends Record<string, unknown>> {
  #raw: RawSettings;
  #value: T;
  readonly #listeners = new Set<ConfigListener<T>>();

  constructor(
    private readonly schema: z.ZodObject,
    private readonly layers: ConfigLayers,
  ) {
    this.#raw = mergeLayers(Object.keys(schema.shape), layers);
    this.#value = parseSettings(schema, this.#raw) as T;
  }

  /** The settings in force now; read it at the point of use to see reloads. */
  get current(): T {
    return this.#value;
  }

  /** Registers a listener for reloads; returns its remover. */
  onChange(listener: ConfigListener<T>): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Applies new settings from the configuration service. Throws `ConfigError` (and changes
   * nothing) when the result does not validate.
   */
  reload(remote: RawSettings): ReloadResult {
    const next = mergeLayers(Object.keys(this.schema.shape), { ...this.layers, remote });
    const names = new Set([...Object.keys(next), ...Object.keys(this.#raw)]);
    const applied: string[] = [];
    const needRestart: string[] = [];
    const candidate: RawSettings = { ...this.#raw };
    for (const name of names) {
      if (next[name] === this.#raw[name]) continue;
      const setting = this.schema.shape[name] as z.ZodType | undefined;
      if (!setting) continue;
      if (!isReloadable(setting)) {
        needRestart.push(name);
        continue;
      }
      if (next[name] === undefined) delete candidate[name];
      else candidate[name] = next[name];
      applied.push(name);
    }
    if (applied.length > 0) {
      const value = parseSettings(this.schema, candidate) as T;
      this.#raw = candidate;
      this.#value = value;
      for (const listener of this.#listeners) listener(value, applied);
    }
    return { applied, needRestart };
  }
}
