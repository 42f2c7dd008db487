/**
 * Loads an optional peer dependency (better-sqlite3, ioredis, node-llama-cpp) when a store that
 * needs it is created, and says which package to install when it is missing.
 */

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export function loadPeer<T>(name: string, subpath: string): T {
  try {
    return require(name) as T;
  } catch (error) {
    if ((error as { code?: string }).code === "MODULE_NOT_FOUND") {
      throw new Error(
        `infercache/${subpath} needs the package \`${name}\`: run \`npm install ${name}\``,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}

/** `loadPeer` for ESM-only packages (node-llama-cpp uses top-level await): a dynamic import. */
export async function importPeer<T>(name: string, subpath: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") {
      throw new Error(
        `infercache/${subpath} needs the package \`${name}\`: run \`npm install ${name}\``,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}
