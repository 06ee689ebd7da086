import type { Context } from '@opentelemetry/api';

/**
 * An OpenTelemetry `Context` that adds one entry per `setValue` on top of its parent, where the
 * API's own context copies its whole Map and makes three closures every time. A request sets
 * two or three entries (span, request scope), so lookups walk a short chain. Hand-written:
 * the Context interface is three methods, and the API offers no cheaper implementation.
 */
class LinkedContext implements Context {
  constructor(
    private readonly parent: LinkedContext | undefined,
    private readonly key: symbol | undefined,
    private readonly value: unknown,
  ) {}

  getValue(key: symbol): unknown {
    for (let context: LinkedContext | undefined = this; context; context = context.parent)
      if (context.key === key) return context.value;
    return undefined;
  }

  setValue(key: symbol, value: unknown): Context {
    return new LinkedContext(this, key, value);
  }

  /** The entry shadowed by `undefined`, which is what `getValue` answers for an absent key. */
  deleteValue(key: symbol): Context {
    return new LinkedContext(this, key, undefined);
  }
}

/** The empty context that request and message pipelines start from. */
export const LINKED_ROOT_CONTEXT: Context = new LinkedContext(undefined, undefined, undefined);
