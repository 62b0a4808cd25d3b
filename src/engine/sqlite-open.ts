import type Database from "better-sqlite3";
import { MessageLog, type LogTuning } from "./sqlite-log.js";
import { MIGRATIONS, SCHEMA, SCHEMA_VERSION } from "./sqlite-schema.js";

/**
 * Brings the file's schema to SCHEMA_VERSION and loads the message log, in
 * one immediate write transaction: a conversion that fails leaves the file as
 * it was. A file of a newer seqcast is refused, never downgraded.
 */
export function openSchema(db: Database.Database, path: string, tuning: Partial<LogTuning> | undefined): MessageLog {
  return db.transaction(() => {
    const version = Number(db.pragma("user_version", { simple: true }));
    if (version > SCHEMA_VERSION) throw new Error(`${path}: schema version ${version} is newer than this seqcast (${SCHEMA_VERSION})`);
    // A database created before a migration's version lacks what it adds; a fresh one (version 0) has it from SCHEMA.
    const fresh = version === 0 && !db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'messages'").get();
    db.exec(SCHEMA);
    if (!fresh) for (const { from, sql } of MIGRATIONS) if (version < from) typeof sql === "string" ? db.exec(sql) : sql(db);
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    // The rooms' blocks not yet written are rebuilt from the log's end (sqlite-log.ts).
    const log = new MessageLog(db, tuning);
    log.load();
    return log;
  }).immediate();
}
