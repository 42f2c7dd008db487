/**
 * A manual cache with normalised keys, like Gradio's cache_manual_demo: different spellings of a
 * city share one entry, and the function reports whether it used the cache.
 */
import { Cache, trackCacheUsage } from "infercache";

const forecasts = new Cache<{ forecast: string }>({ maxSize: 64, ttl: "10m" });

const normalise = (city: string) => city.trim().toLowerCase().replace(/\s+/g, " ");

async function lookupWeather(city: string): Promise<string> {
  const key = normalise(city);
  const cached = await forecasts.get(key);
  if (cached !== undefined) return `${cached.forecast} (cache hit)`;
  await new Promise((resolve) => setTimeout(resolve, 300)); // stands for a slow API
  const forecast = `${key}: ${key.length % 2 === 0 ? "sunny" : "light rain"}, 18°C`;
  await forecasts.set(key, { forecast });
  return forecast;
}

export async function main(): Promise<void> {
  for (const city of ["New York", "  new   york ", "NEW YORK", "Paris"]) {
    const report = await trackCacheUsage(() => lookupWeather(city));
    const badge = report.usage === "none" ? "computed" : "used cache";
    console.log(
      `${JSON.stringify(city).padEnd(18)} -> ${report.result}  [${badge}, ${report.durationMs.toFixed(1)} ms]`,
    );
  }
  console.log(`entries: ${await forecasts.size()}`);
}
