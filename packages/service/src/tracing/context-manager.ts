import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';

let installed = false;

/**
 * Installs the AsyncLocalStorage context manager once per process, so the active span, the
 * principal and the correlation id follow every `await`. Several services in one process (tests)
 * share it; a manager installed by someone else is kept.
 */
export function ensureContextManager(): void {
  if (installed) return;
  const manager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(manager)) manager.disable();
  installed = true;
}
