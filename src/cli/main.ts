#!/usr/bin/env node
/**
 * The `infercache` command: `serve` (the caching gateway), `warm` (precompute a file of requests),
 * `stats`, `purge`, `export`, `import`. `infercache COMMAND --help` says what each takes.
 */

import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SERVE_HELP, serveCommand } from "./serve.js";
import { CommandError, UsageError } from "./shared.js";
import {
  EXPORT_HELP,
  exportCommand,
  IMPORT_HELP,
  importCommand,
  PURGE_HELP,
  purgeCommand,
  STATS_HELP,
  statsCommand,
} from "./store-commands.js";
import { WARM_HELP, warmCommand } from "./warm.js";

const COMMANDS: Record<string, { run: (args: string[]) => Promise<number>; help: string }> = {
  serve: { run: serveCommand, help: SERVE_HELP },
  warm: { run: warmCommand, help: WARM_HELP },
  stats: { run: statsCommand, help: STATS_HELP },
  purge: { run: purgeCommand, help: PURGE_HELP },
  export: { run: exportCommand, help: EXPORT_HELP },
  import: { run: importCommand, help: IMPORT_HELP },
};

export const HELP = `Usage: infercache COMMAND [options]

  serve     the OpenAI-compatible caching gateway (with its dashboard)
  warm      precompute a JSONL file of requests into the store
  stats     what a store holds, or a running gateway's counters
  purge     remove a namespace's entries
  export    write a namespace's entries as JSON lines
  import    read them back

Run \`infercache COMMAND --help\` for a command's options, \`infercache --version\` for the version.
`;

/** The version in package.json, which sits two levels up from src/cli and from dist/cli. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  return (pkg as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-v") {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const topic = name === "help" && rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
    process.stdout.write(topic?.help ?? HELP);
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    process.stderr.write(`Unknown command \`${name}\`.\n${HELP}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(
        `infercache ${name}: ${error.message}\n(see infercache ${name} --help)\n`,
      );
      return 2;
    }
    if (error instanceof CommandError) {
      process.stderr.write(`infercache ${name}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/** Run as a program (also through a bin symlink such as node_modules/.bin/infercache)? */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      // Library errors already start with "infercache: ".
      process.stderr.write(
        `infercache: ${String((error as Error)?.message ?? error).replace(/^infercache: /, "")}\n`,
      );
      process.exit(1);
    },
  );
}
