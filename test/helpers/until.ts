/**
 * Polls `condition` until it holds: tests wait on what they can observe, not on a sleep. Gives up
 * after `timeoutMs` (generous: the bound is a safety net for a broken build, not a timing claim).
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
