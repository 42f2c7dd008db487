/**
 * The arguments of a call are wrong in a way the client can fix. `serve()`'s own checks throw it
 * (the body, `$binary` values, declared `params`) before the function runs, and only it becomes a
 * 400: an error the served function throws is the server's problem, whatever its class or text.
 */
export class ArgumentError extends Error {
  override readonly name = "ArgumentError";
}
