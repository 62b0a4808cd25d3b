import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import type { Worker } from "node:worker_threads";
import { describe, it } from "vitest";
import type { SqliteEngine } from "../../src/engine/sqlite.js";
import { all, draft, open, tempDatabases } from "../support/sqlite-engine.js";
import { createLogger, rootLogger, setRootLogger } from "../../src/log/logger.js";

// WAL checkpoints in a worker thread (src/engine/sqlite-checkpoint.ts): the
// WAL stays bounded while publishes go on, nothing is lost, close() leaves
// no WAL behind, and a failed worker hands checkpoints back to SQLite.

const { tempFile } = tempDatabases();

const PAYLOAD = new Uint8Array(4096).fill(7);
/** Rooms written round-robin, so each batch dirties pages of many rooms. */
const ROOMS = 20;

/** Publishes `batches` batches of `size` 4 KiB messages round-robin over ROOMS, yielding to the event loop between them; returns the WAL's largest size seen. */
async function write(engine: SqliteEngine, path: string, batches: number, size: number, from = 0): Promise<number> {
  let largest = 0;
  for (let b = 0; b < batches; b++) {
    const drafts = Array.from({ length: size }, (_, i) => {
      const n = from + b * size + i;
      return draft(`room.${n % ROOMS}`, `m${n}`, 1_700_000_000_000, { payload: PAYLOAD, clientMessageId: "" });
    });
    await engine.publishBatch!(drafts);
    largest = Math.max(largest, walBytes(path));
    await sleep(2);
  }
  return largest;
}

const walBytes = (path: string) => (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0);

describe("sqlite engine: checkpoints in a worker thread", () => {
  it("keeps the WAL near its restart size while publishes go on, and every message reads back after a restart", async () => {
    const path = tempFile();
    // 200 frames (800 KiB) to a restart, a pass every 5 ms; 4,000 messages of 4 KiB write more than 16 MiB of pages.
    const first = open(path, { checkpoint: { intervalMs: 5, resetFrames: 200 } });
    const checkpointer = first.engine.checkpointer!;
    assert.ok(checkpointer, "an engine on a file checkpoints in a worker");
    const largest = await write(first.engine, path, 200, 20);
    console.log("largest", largest);
        assert.ok(checkpointer.passes > 0, "the worker passed");
    assert.ok(checkpointer.restarts > 0, "the WAL started over");
    assert.equal(checkpointer.failure, undefined);
    // 1.5-1.9 MB here; 8.5-12.8 MB when the engine did not start the WAL over after a pass.
    assert.ok(largest < 4 * 2 ** 20, `WAL at most ${largest} bytes, far below the 16 MiB written`);
    await first.engine.close();
    assert.equal(existsSync(`${path}-wal`), false, "the last connection to close removes the WAL");

    const second = open(path, { checkpoint: false });
    try {
      assert.equal(second.engine.checkpointer, undefined);
      for (let r = 0; r < ROOMS; r++) {
        const page = await second.engine.history(`room.${r}`, all);
        // 200 messages a room; the last 100 kept (historySize 100), in order.
        assert.deepEqual(
          page.messages.map((m) => m.sequence),
          Array.from({ length: 100 }, (_, i) => BigInt(101 + i)),
        );
        assert.deepEqual(
          page.messages.map((m) => m.content),
          Array.from({ length: 100 }, (_, i) => `m${(100 + i) * ROOMS + r}`),
        );
      }
    } finally {
      await second.engine.close();
    }
  });

  it("falls back to SQLite's checkpoint at commit when the worker dies, so the WAL stays bounded", async () => {
    const path = tempFile();
    const { engine } = open(path, { checkpoint: { intervalMs: 60_000, resetFrames: 200 } });
    const lines: string[] = [];
    const before = rootLogger();
    setRootLogger(createLogger({ level: "warn", format: "json", stream: { write: (line: string) => lines.push(line) > 0 } as unknown as NodeJS.WritableStream }));
    try {
      const checkpointer = engine.checkpointer!;
      // The worker stops as a crash would stop it.
      await (checkpointer as unknown as { worker: Worker }).worker.terminate();
      await sleep(10);
      assert.match(checkpointer.failure ?? "", /exited/);
      assert.equal(lines.length, 1, "one warning for the operator");
      assert.match(lines[0]!, /"level":40.*checkpoint worker stopped/);
      const largest = await write(engine, path, 100, 20);
      // Without the fallback (no checkpoint at all) it grew to 11.8 MB here.
      assert.ok(largest < 4 * 2 ** 20, `WAL at most ${largest} bytes, far below the 8 MiB written`);
      const page = await engine.history("room.0", all);
      assert.equal(page.messages.length, 100);
    } finally {
      setRootLogger(before);
      await engine.close();
    }
    assert.equal(existsSync(`${path}-wal`), false);
  });

  it("loses nothing acknowledged when the process is killed while the worker checkpoints (SIGKILL, 3 rounds)", async () => {
    const path = tempFile();
    const child = fileURLToPath(new URL("../support/sqlite-checkpoint-child.ts", import.meta.url));
    const acked = new Map<string, { room: string; sequence: bigint }>();
    for (let round = 0; round < 3; round++) {
      const process_ = spawn(process.execPath, ["--import", "tsx", child, path, String(round)], { stdio: ["ignore", "pipe", "inherit"] });
      let buffered = "";
      let passes = 0;
      const killed = new Promise<void>((resolve, reject) => {
        process_.on("error", reject);
        process_.on("exit", () => resolve());
      });
      process_.stdout.on("data", (chunk: Buffer) => {
        const lines = (buffered + chunk.toString()).split("\n");
        buffered = lines.pop()!;
        for (const line of lines) {
          const [, content, room, sequence, seenPasses] = line.split(" ");
          acked.set(content!, { room: room!, sequence: BigInt(sequence!) });
          passes = Number(seenPasses);
          // Killed once the worker has passed a few times: checkpoints are then under way all the time.
          if (passes >= 5 + round * 3 && !process_.killed) process_.kill("SIGKILL");
        }
      });
      await killed;
      assert.ok(passes >= 5, `round ${round}: the worker passed ${passes} times before the kill`);
    }
    const { engine } = open(path, { retention: { historySize: 1_000_000, historyTtlMs: 0, dedupeWindowMs: 0 }, checkpoint: false });
    try {
      const stored = new Map<string, { room: string; sequence: bigint }>();
      for (let r = 0; r < 4; r++) {
        const page = await engine.history(`crash.${r}`, { ...all, limit: 100_000 });
        assert.deepEqual(
          page.messages.map((m) => m.sequence),
          page.messages.map((_, i) => BigInt(i + 1)),
          `crash.${r}: gapless from 1`,
        );
        for (const m of page.messages) stored.set(m.content, { room: m.room, sequence: m.sequence });
      }
      for (const [content, position] of acked) assert.deepEqual(stored.get(content), position, `acknowledged ${content}`);
      assert.ok(acked.size > 0);
    } finally {
      await engine.close();
    }
  });

  it("checkpoints at commit, with no worker, for an in-memory database and when turned off", async () => {
    for (const options of [{ path: ":memory:" }, { path: tempFile(), checkpoint: false as const }]) {
      const { engine } = open(options.path, options);
      try {
        assert.equal(engine.checkpointer, undefined);
        await engine.publish(draft("room", "one"));
        assert.equal((await engine.history("room", all)).messages.length, 1);
      } finally {
        await engine.close();
      }
    }
  });
});
