/**
 * Waits until `count()` reaches `target`, polling every 2 ms; fails, naming `what`, when the
 * count stops moving for `stallMs`, so that a broken pipeline fails the bench instead of hanging it.
 */
export async function waitForCount(
  count: () => number,
  target: number,
  what: string,
  stallMs = 30_000,
): Promise<void> {
  let last = count();
  let movedAt = performance.now();
  while (count() < target) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    const now = count();
    if (now !== last) {
      last = now;
      movedAt = performance.now();
    } else if (performance.now() - movedAt > stallMs) {
      throw new Error(`${what}: stuck at ${now} of ${target} for ${stallMs / 1000} s`);
    }
  }
}
