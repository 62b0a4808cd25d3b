import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSeqcastClient, type PublishResult } from "../../src/client/index.js";
import { SubscriptionState } from "../../src/client/subscription.js";
import { deleteKeys, redisNodeArgs, SHARED_REDIS_URL, testPrefix } from "../support/redis.js";
import { describe, exited, Recorder, spawnServe, test, testToken, waitUntil } from "../support/fixtures.js";

/** Several broker processes on one machine: allowed on the Redis engine, refused where they would split the state. */
describe("broker processes on one machine", () => {
  test("--workers 2 serves one port from two processes; a worker that dies is replaced and its clients resume on the other", async ({ serve, cleanup }) => {
    const prefix = testPrefix("workers");
    cleanup(() => deleteKeys(SHARED_REDIS_URL, prefix));
    // History deep enough for what flows while a subscriber moves: a move is not a loss.
    const broker = await serve(["--workers", "2", "--history-size", "100000", ...redisNodeArgs(SHARED_REDIS_URL, prefix)]);
    const workerPids = () =>
      broker
        .output()
        .split("\n")
        .filter((l) => l.includes("seqcast worker listening"))
        .map((l) => (JSON.parse(l) as { pid: number }).pid);
    assert.equal(new Set(workerPids()).size, 2, broker.output());
    const room = "workers";
    // Each subscriber has a connection of its own: the primary deals them out in turn.
    const subs = [0, 1, 2, 3].map((i) => {
      const recorder = new Recorder(
        createSeqcastClient({ baseUrl: broker.url, token: testToken(`s${i}`) }).subscribe([room], { backoff: { baseMs: 20, maxMs: 200 } }),
      );
      cleanup(() => recorder.subscription.close());
      return recorder;
    });
    await Promise.all(subs.map((r) => r.subscribedTo(room)));
    let stop = false;
    const acked: PublishResult[] = [];
    const flood = [0, 1].map(async (i) => {
      const pub = createSeqcastClient({ baseUrl: broker.url, token: testToken(`p${i}`), publishBackoff: { baseMs: 20, maxMs: 200 } });
      for (let k = 0; !stop; ) acked.push(...(await Promise.all(Array.from({ length: 10 }, () => pub.publish(room, `p${i}-${k++}`)))));
    });
    await waitUntil(() => acked.length > 200, "publishes before a worker dies", 30_000);
    const victim = workerPids()[0]!;
    process.kill(victim, "SIGKILL");
    await waitUntil(() => workerPids().length === 3, () => `a replacement worker: ${broker.output()}`, 30_000);
    const replacedAt = acked.length;
    await waitUntil(() => acked.length > replacedAt + 200, "publishes after the replacement", 30_000);
    stop = true;
    await Promise.all(flood);
    const total = acked.length;
    assert.deepEqual(
      acked.map((a) => a.sequence).sort((x, y) => Number(x - y)),
      Array.from({ length: total }, (_, i) => BigInt(i + 1)),
    );
    const moved = subs.filter((r) => r.ofType("state").some((e) => e.to === SubscriptionState.Reconnecting)).length;
    console.log(`# --workers 2: killed worker ${victim} after ${replacedAt} publishes; ${moved} of 4 subscribers reconnected; ${total} publishes in all`);
    assert.ok(moved >= 1 && moved <= 3, "connections were spread over both workers");
    for (const r of subs) {
      await r.until((x) => x.messages(room).length >= total, `all ${total} messages`, 30_000);
      assert.deepEqual(r.sequences(room), Array.from({ length: total }, (_, i) => i + 1), "every message once, in order");
      assert.equal(r.ofType("reset").length, 0);
    }
    broker.child.kill("SIGTERM");
    assert.equal(await exited(broker.child), 0, "the primary stops its workers and exits cleanly");
    assert.match(broker.output(), /"msg":"seqcast stopped"}/);
  });

  test("refuses --workers on an engine that cannot be shared, in one line", async () => {
    for (const engine of ["sqlite", "memory"]) {
      await assert.rejects(spawnServe(["--engine", engine, "--workers", "2"]), (error: Error) => {
        assert.match(error.message, /exit 2/);
        assert.match(error.message, new RegExp(`seqcast serve: --workers 2 needs --engine redis: the ${engine} engine keeps rooms in one process`));
        return true;
      });
    }
  });

  test("refuses a second sqlite broker on the same data directory, naming it and the first one's pid", async ({ serve }) => {
    const dataDir = mkdtempSync(join(tmpdir(), "seqcast-lock-"));
    const first = await serve(["--engine", "sqlite", "--data-dir", dataDir]);
    await assert.rejects(serve(["--engine", "sqlite", "--data-dir", dataDir]), (error: Error) => {
      assert.match(error.message, /exit 2/);
      assert.ok(
        error.message.includes(`data directory ${dataDir} is in use by another seqcast broker (pid ${first.child.pid})`),
        error.message,
      );
      return true;
    });
    // Its lock dies with it, however it dies.
    first.child.kill("SIGKILL");
    await exited(first.child);
    const second = await serve(["--engine", "sqlite", "--data-dir", dataDir]);
    assert.ok(second.port > 0);
  });
});
