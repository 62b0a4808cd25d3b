import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll } from "vitest";
import type { Engine, HistoryQuery, MessageDraft, RoomEvent, StoredMessage } from "../../src/engine/engine.js";
import { createSqliteEngine, type SqliteEngineOptions } from "../../src/engine/sqlite.js";

/**
 * The SQLite engine's own tests (test/engine/sqlite*.test.ts): their database
 * files, the engine opened on one, and a look at the file from outside it.
 */

/** A directory of the calling test file's own, removed after its tests; `tempFile` names a new database in it. */
export function tempDatabases(): { dir: string; tempFile: () => string } {
  const dir = mkdtempSync(join(tmpdir(), "seqcast-sqlite-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let files = 0;
  return { dir, tempFile: () => join(dir, `engine-${files++}.db`) };
}

/** A message from alice with every field set; `extra` replaces any of them. */
export const draft = (room: string, content: string, timeMs = 1_700_000_000_000, extra: Partial<MessageDraft> = {}): MessageDraft => ({
  room,
  sender: "alice",
  content,
  payload: new Uint8Array([1, 2, 3]),
  attributes: { kind: "test" },
  timeMs,
  clientMessageId: `cm-${content}`,
  ...extra,
});

/** A room's whole retained history, oldest first. */
export const all: HistoryQuery = { after: 0n, before: 0n, limit: 1000, direction: "forward" };

/**
 * An engine on `path` (100 messages kept a room, no TTL, no dedupe window)
 * with a clock the test moves and a record of what it fanned out.
 */
export function open(path: string, extra: Partial<SqliteEngineOptions> = {}) {
  const events: Array<{ room: string; event: RoomEvent }> = [];
  const clock = { now: 1_700_000_000_000 };
  const engine = createSqliteEngine({
    path,
    retention: { historySize: 100, historyTtlMs: 0, dedupeWindowMs: 0 },
    listener: (room, event) => events.push({ room, event }),
    now: () => clock.now,
    ...extra,
  });
  return { engine, events, clock };
}

/** Rows a room stores (its log's rows from its floor on: sqlite-log.ts) as a second, independent connection sees them. */
export function peek(path: string, room: string): bigint[] {
  const db = new Database(path, { readonly: true });
  try {
    db.defaultSafeIntegers(true);
    return db
      .prepare("SELECT m.sequence FROM messages m JOIN rooms r ON r.log_id = m.log_id WHERE r.name = ? AND m.sequence >= r.kept_from ORDER BY m.sequence")
      .pluck()
      .all(room) as bigint[];
  } finally {
    db.close();
  }
}

/** The stored message of a publish. */
export async function publishMessage(engine: Engine, d: MessageDraft): Promise<StoredMessage> {
  return (await engine.publish(d)).message;
}
