/**
 * `infercache/sqlite`: the embedded persistent store. Needs the optional peer dependency
 * `better-sqlite3` (`npm install better-sqlite3`).
 */
export { CorruptEntryError, NotSerializableError } from "./store/envelope.js";
export { LockTimeoutError } from "./store/sqlite/writer.js";
export { SqliteStore, type SqliteStoreOptions } from "./store/sqlite.js";
