/**
 * Retries a process's start-up while a server it needs is restarting, as an orchestrator
 * restarting a crash-looping container would; gives up after `timeoutMs`.
 */
export async function retryStart<T>(what: string, start: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      console.error(`${what} failed to start (attempt ${attempt}): ${(error as Error).message}; retrying`);
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * attempt)));
    }
  }
}
