import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultBrokerConfig } from "../../src/broker/config.js";
import { createSeqcastClient, SubscriptionState } from "../../src/client/index.js";
import { createSqliteEngine } from "../../src/engine/sqlite.js";
import { startServer } from "../../src/server/server.js";
import { describe, pause, Recorder, startCuttableProxy, test, testAuthenticate, testToken } from "../support/fixtures.js";

/**
 * Chaos: a long stream of messages while subscribers' connections are cut at
 * random and publishers retry through cuts of their own. Every application
 * must end with exactly 1..n, in order; no publish may be stored twice.
 */
describe("chaos: 10,000 messages through 100+ cuts", () => {
  test("delivers exactly 1..n to every subscriber and stores each publish once", async ({ cleanup }) => {
    const dataDir = mkdtempSync(join(tmpdir(), "seqcast-chaos-"));
    const server = await startServer({
      config: { ...defaultBrokerConfig, historySize: 20_000, publishRate: 0 },
      engine: (o) => createSqliteEngine({ ...o, path: join(dataDir, "seqcast.db") }),
      port: 0,
      authenticate: await testAuthenticate(),
    });
    const subProxy = await startCuttableProxy(server.port);
    const pubProxy = await startCuttableProxy(server.port);
    cleanup(() => server.close());
    cleanup(() => subProxy.close());
    cleanup(() => pubProxy.close());
    const room = "chaos";
    const total = 10_000;
    const perPublisher = total / 2;

    const subscribers = [1, 2, 3].map(
      (i) =>
        new Recorder(
          createSeqcastClient({ baseUrl: subProxy.url, token: testToken(`s${i}`) }).subscribe([room], {
            backoff: { baseMs: 5, maxMs: 100 },
            gapFillDelayMs: 50,
          }),
        ),
    );
    await Promise.all(subscribers.map((s) => s.subscribedTo(room)));

    let publishing = true;
    const cutter = (async () => {
      // Random cuts of the subscribers' connections while messages flow, then
      // until at least 100 happened. Each cut waits (up to 1 s) until the
      // subscribers are live again, so it interrupts streams, not reconnects.
      while (publishing || subProxy.cuts < 100) {
        const live = performance.now() + 1000;
        while (performance.now() < live && !subscribers.every((s) => s.subscription.state === SubscriptionState.Connected)) await pause(5);
        await pause(10 + Math.floor(Math.random() * 60));
        subProxy.cut();
        if (Math.random() < 0.15) pubProxy.cut();
      }
    })();

    const results = await Promise.all(
      [1, 2].map(async (p) => {
        // One publisher on a PublishStream, the other with unary calls: both paths through the cuts.
        const client = createSeqcastClient({
          baseUrl: pubProxy.url,
          token: testToken(`p${p}`),
          publishBackoff: { baseMs: 5, maxMs: 100 },
          maxPublishAttempts: 1000,
          publishVia: p === 1 ? "stream" : "unary",
          maxPublishesInFlight: p === 1 ? undefined : 128,
        });
        return Promise.all(Array.from({ length: perPublisher }, (_, k) => client.publish(room, `p${p}-${k}`)));
      }),
    );
    publishing = false;
    await cutter;
    console.log(`# ${subProxy.cuts} subscriber cuts, ${pubProxy.cuts} publisher cuts`);
    assert.ok(subProxy.cuts >= 100);

    for (const s of subscribers) await s.until((r) => r.messages(room).length >= total, "every message", 120_000);
    const expected = Array.from({ length: total }, (_, i) => i + 1);
    for (const s of subscribers) {
      assert.deepEqual(s.sequences(room), expected, "exactly 1..n, in order");
      assert.equal(s.ofType("reset").length, 0, "nothing lost");
      assert.ok(s.ofType("subscribed").length > 10, `the stream really was cut and resumed (${s.summary()})`);
    }
    const contents = subscribers[0]!.contents(room);
    assert.equal(new Set(contents).size, total, "no publish stored twice");
    for (const p of [1, 2]) {
      const mine = contents.filter((c) => c.startsWith(`p${p}-`)).map((c) => Number(c.split("-")[1]));
      assert.deepEqual(mine, Array.from({ length: perPublisher }, (_, k) => k), `publisher ${p} FIFO`);
    }
    const duplicates = results.flat().filter((r) => r.duplicate).length;
    console.log(`# ${duplicates} retries were recognised as duplicates`);
    await Promise.all(subscribers.map((s) => s.subscription.close()));
  });
});
