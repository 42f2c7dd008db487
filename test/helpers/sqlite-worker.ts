/**
 * A child process for the SqliteStore tests: `write <path> <id> <count>` writes `count` entries
 * tagged with its id, reading others' entries as it goes; `storm <path>` writes until killed.
 */
import { SqliteStore } from "../../src/sqlite.js";

const [mode, path, id = "0", countText = "0"] = process.argv.slice(2);
if (path === undefined) throw new Error("usage: sqlite-worker <write|storm> <path> [id] [count]");
const store = new SqliteStore({ path, accessFlushMs: 50 });
const scope = { namespace: "multi" };

function value(writer: string, i: number) {
  return {
    writer,
    i,
    tensor: new Float32Array(64).fill(i),
    text: `entry ${writer}:${i} `.repeat(20),
  };
}

if (mode === "write") {
  const count = Number(countText);
  let reads = 0;
  for (let i = 0; i < count; i++) {
    await store.set(`${id}:${i}`, scope, { value: value(id, i), createdAt: Date.now() });
    if ((await store.get(`0:${i}`, scope)) !== undefined) reads++;
  }
  await store.close();
  process.stdout.write(JSON.stringify({ id, wrote: count, reads }));
} else if (mode === "storm") {
  process.stdout.write("ready\n");
  for (let i = 0; ; i++) {
    const big = {
      writer: "storm",
      i,
      blob: new Uint8Array(200_000).fill(i % 251),
      text: "x".repeat(i % 5000),
    };
    await store.set(`storm:${i % 500}`, scope, { value: big, createdAt: Date.now() });
  }
}
