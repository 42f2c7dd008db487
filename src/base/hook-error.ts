/**
 * `HookError`: a `redact` or `noStore` hook threw (or returned what it may not). The call fails
 * with it and nothing is sent, keyed or stored. The message names the hook and the kind of error
 * only: a hook's own message may quote the input it was redacting, so it stays in `cause`.
 */

export type HookName = "redact" | "noStore";

export class HookError extends Error {
  override readonly name = "HookError";
  readonly hook: HookName;

  constructor(hook: HookName, problem: string, cause?: unknown) {
    super(
      `infercache: the \`${hook}\` hook ${problem}; nothing was computed or stored (the hook's own message is in \`cause\`)`,
      cause === undefined ? undefined : { cause },
    );
    this.hook = hook;
  }

  /** A hook that threw `error`, described by its class only. */
  static threw(hook: HookName, error: unknown): HookError {
    const kind = error instanceof Error ? error.name : typeof error;
    return new HookError(hook, `threw (${kind})`, error);
  }
}
