/**
 * Per-request cache controls in HTTP terms (`Cache-Control` on the request):
 * - `no-store`: do not write this answer;
 * - `no-cache`: do not read (refresh), write the new answer;
 * - `max-age=S`: keep this answer S seconds;
 * - `s-maxage=S`: accept a stored answer only if it is at most S seconds old.
 */

export interface CacheControl {
  noStore: boolean;
  noCache: boolean;
  /** ms, or undefined */
  maxAgeMs: number | undefined;
  /** ms, or undefined */
  acceptAgeMs: number | undefined;
}

export function parseCacheControl(header: string | null): CacheControl {
  const control: CacheControl = {
    noStore: false,
    noCache: false,
    maxAgeMs: undefined,
    acceptAgeMs: undefined,
  };
  if (header === null) return control;
  for (const part of header.toLowerCase().split(",")) {
    const [name, value] = part.trim().split("=") as [string, string | undefined];
    const seconds = value === undefined ? Number.NaN : Number(value.replace(/"/g, ""));
    if (name === "no-store") control.noStore = true;
    else if (name === "no-cache") control.noCache = true;
    else if (name === "max-age" && Number.isFinite(seconds) && seconds >= 0)
      control.maxAgeMs = seconds * 1000;
    else if (name === "s-maxage" && Number.isFinite(seconds) && seconds >= 0)
      control.acceptAgeMs = seconds * 1000;
  }
  return control;
}
