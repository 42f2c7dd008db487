/**
 * The session of a request: the `x-session-id` header, else the `infercache-session` cookie.
 * Shared by `serve()` and the gateway.
 */

type HeaderSource =
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>;

export const SESSION_HEADER = "x-session-id";
export const SESSION_COOKIE = "infercache-session";

export function sessionOf(headers: HeaderSource): string | undefined {
  const read = (name: string): string | undefined => {
    if (typeof headers.get === "function")
      return (headers as { get(name: string): string | null }).get(name) ?? undefined;
    const value = (headers as Record<string, string | string[] | undefined>)[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const header = read(SESSION_HEADER);
  if (header !== undefined && header !== "") return header;
  const cookie = read("cookie");
  if (cookie === undefined) return undefined;
  const match = /(?:^|;\s*)infercache-session=([^;]+)/.exec(cookie);
  return match?.[1];
}
