import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSeqcastClient, type PublishResult } from "../../src/client/index.js";
import { describe, exited, pause, Recorder, test, testToken, waitUntil } from "../support/fixtures.js";

/**
 * The embedded default store survives `kill -9`: every publish acknowledged
 * to its publisher is in history after the restart, sequences continue
 * gapless under the same epoch, and a subscriber resumes without a hole.
 */
describe("crash safety of the sqlite engine (SIGKILL)", () => {
  test("keeps every acknowledged publish across repeated SIGKILLs under load", async ({ serve }) => {
    const dataDir = mkdtempSync(join(tmpdir(), "seqcast-crash-"));
    const args = (port: number) => ["--engine", "sqlite", "--data-dir", dataDir, "--port", String(port), "--history-size", "100000"];
    let broker = await serve(args(0));
    const url = `http://127.0.0.1:${broker.port}`;
    const room = "crash";
    const options = { publishBackoff: { baseMs: 50, maxMs: 400 }, maxPublishAttempts: 200 };
    const subscriber = new Recorder(
      createSeqcastClient({ baseUrl: url, token: testToken("reader") }).subscribe([room], { backoff: { baseMs: 50, maxMs: 400 } }),
    );
    await subscriber.subscribedTo(room);

    let stop = false;
    const acked: Array<PublishResult & { content: string }> = [];
    const publishers = [1, 2, 3].map(async (id) => {
      const client = createSeqcastClient({ baseUrl: url, token: testToken(`p${id}`), ...options });
      for (let k = 0; !stop; ) {
        const batch = Array.from({ length: 8 }, () => {
          const content = `p${id}-${k++}`;
          return client.publish(room, content).then((r) => acked.push({ ...r, content }));
        });
        await Promise.all(batch);
      }
    });

    const rounds = 4;
    for (let round = 0; round < rounds; round++) {
      const before = acked.length;
      // Load for a random while (and at least some acknowledged publishes), then crash.
      await pause(200 + Math.floor(Math.random() * 600));
      await waitUntil(() => acked.length > before + 20, "publishes acknowledged before the crash", 30_000);
      broker.child.kill("SIGKILL");
      await exited(broker.child);
      broker = await serve(args(broker.port));
    }
    stop = true;
    await Promise.all(publishers);

    const reader = createSeqcastClient({ baseUrl: url, token: testToken("checker") });
    const history = [];
    for (let after = 0n; ; ) {
      const page = await reader.history(room, { after, limit: 1000 });
      history.push(...page.messages);
      if (!page.hasMore) break;
      after = page.messages.at(-1)!.sequence;
    }
    const n = history.length;
    console.log(`# ${rounds} SIGKILLs, ${acked.length} acknowledged publishes, ${n} messages in history`);
    assert.deepEqual(history.map((m) => Number(m.sequence)), Array.from({ length: n }, (_, i) => i + 1), "gapless 1..n");
    assert.equal(new Set(history.map((m) => m.epoch)).size, 1, "one epoch across every restart");
    assert.equal(history[0]!.epoch, acked[0]!.epoch);
    const bySequence = new Map(history.map((m) => [m.sequence, m.content]));
    for (const a of acked) assert.equal(bySequence.get(a.sequence), a.content, `acknowledged ${a.content} at ${a.sequence}`);
    assert.equal(new Set(history.map((m) => m.content)).size, n, "no publish stored twice");
    assert.equal(acked.length, n, "every stored message was acknowledged to its publisher");

    await subscriber.until((r) => r.messages(room).length >= n, "the subscriber to catch up", 60_000);
    assert.deepEqual(subscriber.sequences(room), Array.from({ length: n }, (_, i) => i + 1), "the subscriber saw 1..n exactly once");
    assert.equal(subscriber.ofType("reset").length, 0);
    assert.ok(subscriber.ofType("subscribed").slice(1).every((s) => s.recovered), "every resume recovered");
    await subscriber.subscription.close();
    broker.child.kill("SIGTERM");
  });
});
