/**
 * What earlier versions wrote, for the tests that keep it readable: envelope version 1 (kept
 * verbatim in `V1_FIXTURE`, and rebuilt by `encodeEntryV1`) and the SQLite schema version 1.
 */
import { createHash } from "node:crypto";
import { serialize } from "node:v8";
import Database from "better-sqlite3";
import type { Entry } from "../../src/index.js";
import { crc32InJs } from "../../src/store/envelope.js";

/** An envelope written by version 1 of the code, byte for byte. */
export const V1_FIXTURE = {
  base64:
    "SUNFAQAAAGrwSkdRSENEHP8PbyIBdm8iBHRleHQiHXdyaXR0ZW4gYnkgZW52ZWxvcGUgdmVyc2lvbiAxIgFuQQNJAkkESQYkAAN7AiIBY04AAIBW/rx4QiIBZU4AAADFhTF6QiIBbU4AAAAAAAApQCIBayIDcmF3ewU=",
  entry: {
    value: { text: "written by envelope version 1", n: [1, 2, 3] },
    createdAt: 1_700_000_000_000,
    expiresAt: 1_800_000_000_000,
    computeMs: 12.5,
    rawKey: "raw",
  } as Entry,
};

/** Envelope version 1: payload `{ v, c, e?, m?, k? }`; CRC-32 twice up to 16 KiB, else SHA-256. */
export function encodeEntryV1(entry: Entry): Buffer {
  const payload: Record<string, unknown> = { v: entry.value, c: entry.createdAt };
  if (entry.expiresAt !== undefined) payload.e = entry.expiresAt;
  if (entry.computeMs !== undefined) payload.m = entry.computeMs;
  if (entry.rawKey !== undefined) payload.k = entry.rawKey;
  const body = serialize(payload);
  let checksum: Buffer;
  if (body.length > 16 * 1024) {
    checksum = createHash("sha256").update(body).digest().subarray(0, 8);
  } else {
    checksum = Buffer.alloc(8);
    checksum.writeUInt32BE(crc32InJs(body), 0);
    checksum.writeUInt32BE(crc32InJs(body, true), 4);
  }
  const header = Buffer.from([0x49, 0x43, 0x45, 1, 0, 0, 0, 0]);
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, checksum, body]);
}

/** The tables and triggers of SqliteStore's schema versions 1 and 2, as it wrote them. */
const SCHEMA_TABLES = `
    CREATE TABLE IF NOT EXISTS infercache_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS entries (
      id INTEGER PRIMARY KEY,
      namespace TEXT NOT NULL,
      session TEXT NOT NULL,
      key TEXT NOT NULL,
      value BLOB NOT NULL,
      bytes INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      expires_at INTEGER,
      accessed_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS entries_address ON entries (namespace, session, key);
    CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 1), entries INTEGER NOT NULL, bytes INTEGER NOT NULL);
    INSERT OR IGNORE INTO totals (id, entries, bytes) VALUES (1, 0, 0);
    CREATE TRIGGER IF NOT EXISTS entries_insert AFTER INSERT ON entries BEGIN
      UPDATE totals SET entries = entries + 1, bytes = bytes + NEW.bytes WHERE id = 1;
    END;
    CREATE TRIGGER IF NOT EXISTS entries_delete AFTER DELETE ON entries BEGIN
      UPDATE totals SET entries = entries - 1, bytes = bytes - OLD.bytes WHERE id = 1;
    END;
    CREATE TRIGGER IF NOT EXISTS entries_update AFTER UPDATE OF bytes ON entries BEGIN
      UPDATE totals SET bytes = bytes - OLD.bytes + NEW.bytes WHERE id = 1;
    END;
`;

/** Schema version 2 as `src/store/sqlite/schema.ts` wrote it before tags: version 1 and the session index. */
export const SCHEMA_V2 = `${SCHEMA_TABLES}
    CREATE INDEX IF NOT EXISTS entries_session ON entries (session, namespace) WHERE session <> '';
    INSERT INTO infercache_meta (name, value) VALUES ('schema', '2');
`;

/**
 * A SQLite file as SqliteStore's schema version 1 made it (no session index), holding `rows`
 * in version 1 envelopes.
 */
export function createSchemaV1File(
  path: string,
  rows: { namespace: string; session?: string; key: string; entry: Entry }[],
): void {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.exec(`${SCHEMA_TABLES}
    INSERT INTO infercache_meta (name, value) VALUES ('schema', '1');
  `);
  const insert = db.prepare(
    "INSERT INTO entries (namespace, session, key, value, bytes, created_at, expires_at, accessed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
  );
  for (const [i, row] of rows.entries()) {
    const value = encodeEntryV1(row.entry);
    insert.run(
      row.namespace,
      row.session ?? "",
      row.key,
      value,
      64 + 2 * row.key.length + value.length,
      row.entry.createdAt,
      row.entry.expiresAt ?? null,
      (1_700_000_000_000 + i) * 1000,
    );
  }
  db.close();
}
