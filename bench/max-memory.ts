/**
 * Does `maxMemory` hold, whatever the values look like? For each shape of
 * `test/helpers/memory-shapes.ts` (objects with unique property names, dictionary-mode objects,
 * slices of big strings, views of big buffers, …), a fresh process under `node --expose-gc`
 * fills a `maxMemory: "64mb"`, `maxSize: 0` cache with 10x its budget of traffic and reports
 * what the cache accounts (`stats().bytes`) next to the measured heap growth (V8 heap used plus
 * ArrayBuffer memory, after full GCs).
 *
 * `node --import tsx bench/max-memory.ts [--budget BYTES] [--traffic N] [--only NAME,NAME]`
 * prints a JSON array of results, one per shape, in the shapes' order.
 */
import { fileURLToPath } from "node:url";
import { measureInChild, type ShapeResult, shapes } from "../test/helpers/memory-shapes.js";

/** Children at once: each measures its own heap, so sharing the CPU does not skew them. */
const PARALLEL = 2;

export interface MaxMemoryOptions {
  budgetBytes?: number;
  traffic?: number;
  only?: string[];
}

export async function maxMemoryRun(options: MaxMemoryOptions = {}): Promise<ShapeResult[]> {
  const budget = options.budgetBytes ?? 64 * 1024 * 1024;
  const traffic = options.traffic ?? 10;
  const names = shapes.map((s) => s.name).filter((n) => options.only?.includes(n) ?? true);
  const results: ShapeResult[] = new Array(names.length);
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const index = next++;
      results[index] = await measureInChild(names[index] as string, budget, traffic);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return results;
}

const isMain = process.argv[1] === fileURLToPath(import.meta.url);
if (isMain) {
  const flag = (name: string) => {
    const at = process.argv.indexOf(name);
    return at === -1 ? undefined : process.argv[at + 1];
  };
  const budget = flag("--budget");
  const traffic = flag("--traffic");
  const only = flag("--only");
  const options: MaxMemoryOptions = {};
  if (budget !== undefined) options.budgetBytes = Number(budget);
  if (traffic !== undefined) options.traffic = Number(traffic);
  if (only !== undefined) options.only = only.split(",");
  console.log(JSON.stringify(await maxMemoryRun(options), null, 2));
}
