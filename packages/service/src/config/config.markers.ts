import { z } from 'zod';
import { Secret } from './secret.js';

/** What the runtime knows about a setting besides its type. */
export interface SettingMeta {
  /** Read from `<NAME>_FILE` too, and never logged: the value arrives wrapped in {@link Secret}. */
  readonly secret?: boolean;
  /** Applied while running when the configuration service changes it; others need a restart. */
  readonly reloadable?: boolean;
}

/** Marks settings in a configuration schema; read by the loader. */
export const settingRegistry = z.registry<SettingMeta>();

/**
 * A secret setting: read from the variable or from the file that `<NAME>_FILE` names (Docker
 * and Kubernetes secrets), never logged, and handed over as a {@link Secret}.
 * @example
 * const schema = z.object({ DATABASE_PASSWORD: secret(z.string().min(1)) });
 * config.DATABASE_PASSWORD.reveal();
 */
export function secret<S extends z.ZodType<string>>(schema: S) {
  const wrapped = schema.transform((value) => new Secret(value));
  settingRegistry.add(wrapped, { secret: true });
  return wrapped;
}

/**
 * A setting the configuration service may change while the service runs; listeners registered
 * with `LiveConfig.onChange` see the new value. Settings not marked so need a restart.
 */
export function reloadable<S extends z.ZodType>(schema: S): S {
  const meta = settingRegistry.get(schema);
  settingRegistry.add(schema, { ...meta, reloadable: true });
  return schema;
}

/** Whether `schema` (a setting of a configuration object) was marked with {@link secret}. */
export function isSecret(schema: z.ZodType): boolean {
  return settingRegistry.get(unwrap(schema))?.secret === true;
}

/** Whether `schema` was marked with {@link reloadable}. */
export function isReloadable(schema: z.ZodType): boolean {
  return (
    settingRegistry.get(schema)?.reloadable === true ||
    settingRegistry.get(unwrap(schema))?.reloadable === true
  );
}

/** Looks through `.optional()` and `.default()` wrappers to the marked schema. */
function unwrap(schema: z.ZodType): z.ZodType {
  let current: z.ZodType = schema;
  for (let i = 0; i < 5; i++) {
    if (settingRegistry.has(current)) return current;
    const inner = (current as unknown as { def?: { innerType?: z.ZodType } }).def?.innerType;
    if (!inner) return current;
    current = inner;
  }
  return current;
}
