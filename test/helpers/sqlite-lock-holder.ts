/**
 * A child process that holds a SQLite file's write lock, as another program would (a backup, a
 * `sqlite3` shell, a long migration): `sqlite-lock-holder <path> <mode> [holdMs]` opens the file
 * with plain better-sqlite3, begins the transaction, prints `locked`, and commits
 * when its stdin receives a line (or closes), or after `holdMs` (default 30 s, a safety net), then
 * prints `released` and exits. Modes: `immediate` and `exclusive` in WAL mode (readers go on);
 * `rollback` switches the file to a rollback journal and holds EXCLUSIVE (readers are locked out
 * too, as a program that turns WAL off would do).
 */
import Database from "better-sqlite3";

const [path, mode = "immediate", holdText = "30000"] = process.argv.slice(2);
if (path === undefined || !["immediate", "exclusive", "rollback"].includes(mode)) {
  throw new Error("usage: sqlite-lock-holder <path> <immediate|exclusive|rollback> [holdMs]");
}
const db = new Database(path);
db.pragma(mode === "rollback" ? "journal_mode = DELETE" : "journal_mode = WAL");
db.exec(mode === "immediate" ? "BEGIN IMMEDIATE" : "BEGIN EXCLUSIVE");
process.stdout.write("locked\n");

let released = false;
const release = () => {
  if (released) return;
  released = true;
  db.exec("COMMIT");
  db.close();
  process.stdout.write("released\n");
  process.exit(0);
};
process.stdin.on("data", release);
process.stdin.on("end", release);
setTimeout(release, Number(holdText));
