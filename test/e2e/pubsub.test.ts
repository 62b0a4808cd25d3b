import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { SubscriptionState } from "../../src/client/subscription.js";
import { test, describe, PROTOCOLS, clientFor, startBroker, Recorder, startCuttableProxy, testToken, pause } from "../support/fixtures.js";

for (const p of PROTOCOLS) {
  describe(`pub/sub over ${p.name}`, () => {
    test("delivers to three clients in the same order, and a late joiner reads it from history", async ({ client, subscribe }) => {
      const room = "lobby";
      const [alice, bob, carol] = ["alice", "bob", "carol"].map((u) => subscribe(u, [room], p));
      await Promise.all([alice!, bob!, carol!].map((r) => r.subscribedTo(room)));
      const publisher = client("alice", p);
      for (const text of ["hi", "hello", "hey"]) await publisher.publish(room, text);
      for (const r of [alice!, bob!, carol!]) {
        await r.until((x) => x.messages(room).length === 3, "3 messages");
        assert.deepEqual(r.contents(room), ["hi", "hello", "hey"]);
        assert.deepEqual(r.sequences(room), [1, 2, 3]);
        const first = r.messages(room)[0]!;
        assert.equal(first.sender, "alice");
        assert.equal(first.room, room);
        assert.ok(first.id.length > 0 && first.epoch.length > 0 && first.time);
      }
      const late = client("dave", p);
      const history = await late.history(room);
      assert.deepEqual(history.messages.map((m) => [Number(m.sequence), m.sender, m.content]), [
        [1, "alice", "hi"],
        [2, "alice", "hello"],
        [3, "alice", "hey"],
      ]);
      assert.equal(history.sequence, 3n);
      const page = await late.history(room, { after: 1n, limit: 1 });
      assert.deepEqual(page.messages.map((m) => m.content), ["hello"]);
      assert.equal(page.hasMore, true);
    });

    test("keeps rooms isolated, each with its own sequence", async ({ client, subscribe }) => {
      const sports = subscribe("sam", ["sports"], p);
      const news = subscribe("nina", ["news"], p);
      const both = subscribe("bea", ["sports", "news"], p);
      await Promise.all([sports.subscribedTo("sports"), news.subscribedTo("news"), both.subscribedTo("news"), both.subscribedTo("sports")]);
      const pub = client("pub", p);
      await pub.publish("sports", "goal");
      await pub.publish("news", "election");
      await pub.publish("sports", "offside");
      await both.until((r) => r.messages().length === 3, "3 messages on two rooms");
      await sports.until((r) => r.messages().length === 2, "2 sports messages");
      await news.until((r) => r.messages().length === 1, "1 news message");
      assert.deepEqual(sports.contents(), ["goal", "offside"]);
      assert.deepEqual(sports.sequences(), [1, 2]);
      assert.deepEqual(news.contents(), ["election"]);
      assert.deepEqual(news.sequences(), [1]);
      assert.deepEqual(both.contents("sports"), ["goal", "offside"]);
      // Nothing of another room leaks into a subscriber: give stragglers a moment.
      await pause(100);
      assert.equal(news.messages().length, 1);
      assert.ok(news.messages().every((m) => m.room === "news"));
    });

    test("orders a burst of 1,000 publishes from several publishers identically for every subscriber", async ({ client, subscribe }) => {
      const room = "burst";
      const subs = ["s1", "s2", "s3"].map((u) => subscribe(u, [room], p));
      await Promise.all(subs.map((r) => r.subscribedTo(room)));
      const publishers = ["p1", "p2", "p3", "p4"].map((u) => client(u, p));
      const acks = await Promise.all(
        publishers.map(async (pub, i) => {
          const positions: bigint[] = [];
          // Each publisher keeps 25 publishes in flight, 250 in all.
          for (let batch = 0; batch < 10; batch++) {
            const sent = await Promise.all(
              Array.from({ length: 25 }, (_, j) => pub.publish(room, `${i}:${batch * 25 + j}`)),
            );
            positions.push(...sent.map((s) => s.sequence));
          }
          return positions;
        }),
      );
      const all = acks.flat().sort((a, b) => Number(a - b));
      assert.deepEqual(all, Array.from({ length: 1000 }, (_, i) => BigInt(i + 1)), "acks are 1..1000, no hole, no reuse");
      for (const r of subs) await r.until((x) => x.messages(room).length >= 1000, "1000 messages", 20_000);
      const reference = subs[0]!.contents(room);
      for (const r of subs) {
        assert.deepEqual(r.sequences(room), Array.from({ length: 1000 }, (_, i) => i + 1));
        assert.deepEqual(r.contents(room), reference, "every subscriber sees the same order");
      }
      // Publisher FIFO: each publisher's own messages appear in the order it sent them.
      for (let i = 0; i < 4; i++) {
        const mine = reference.filter((c) => c.startsWith(`${i}:`)).map((c) => Number(c.split(":")[1]));
        assert.deepEqual(mine, [...mine].sort((a, b) => a - b));
      }
    });

    test("announces joins and leaves, also for a client killed without goodbye", async ({ broker, client, subscribe, cleanup }) => {
      const room = "presence-room";
      const watcher = subscribe("walter", [room], p, { device: "laptop" });
      await watcher.subscribedTo(room);
      const bob = subscribe("bob", [room], p, { device: "phone" });
      await watcher.until((r) => r.ofType("presence").some((e) => e.kind === "join" && e.entry.user === "bob"), "bob's join");
      const joined = await client("walter", p).presence(room);
      assert.deepEqual(joined.entries.map((e) => [e.user, e.device]).sort(), [["bob", "phone"], ["walter", "laptop"]]);
      assert.equal(joined.userCount, 2);
      assert.equal(joined.sessionCount, 2);
      await bob.subscription.leave(room);
      await watcher.until((r) => r.ofType("presence").some((e) => e.kind === "leave" && e.entry.user === "bob"), "bob's leave");

      // A separate process subscribes, then dies with SIGKILL: no goodbye, just a dropped connection.
      const child = spawn(
        process.execPath,
        ["--import", "tsx", "test/e2e/fixtures/subscriber-process.ts", broker.url, testToken("zed"), room, p.protocol, p.httpVersion],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      cleanup(async () => child.kill("SIGKILL"));
      await watcher.until((r) => r.ofType("presence").some((e) => e.kind === "join" && e.entry.user === "zed"), "zed's join", 20_000);
      child.kill("SIGKILL");
      await watcher.until((r) => r.ofType("presence").some((e) => e.kind === "leave" && e.entry.user === "zed"), "zed's leave after SIGKILL");
      const left = await client("walter", p).presence(room);
      assert.deepEqual(left.entries.map((e) => e.user), ["walter"]);
    });

    test("resumes after a dropped connection with nothing lost and nothing doubled", async ({ broker, client, cleanup }) => {
      const room = "resume";
      const proxy = await startCuttableProxy(broker.port);
      cleanup(() => proxy.close());
      const sub = clientFor(proxy.url, "rita", p).subscribe([room], { backoff: { baseMs: 20, maxMs: 200 } });
      cleanup(() => sub.close());
      const rec = new Recorder(sub);
      await rec.subscribedTo(room);
      const pub = client("pete", p);
      for (let i = 1; i <= 20; i++) await pub.publish(room, `m${i}`);
      await rec.until((r) => r.messages(room).length === 20, "first 20");
      proxy.cut();
      // Published while the subscriber is cut off.
      for (let i = 21; i <= 40; i++) await pub.publish(room, `m${i}`);
      await rec.until((r) => r.ofType("state").some((e) => e.to === SubscriptionState.Reconnecting), "reconnecting");
      await sub.waitFor(SubscriptionState.Connected);
      for (let i = 41; i <= 50; i++) await pub.publish(room, `m${i}`);
      await rec.until((r) => r.messages(room).length >= 50, "all 50");
      assert.deepEqual(rec.sequences(room), Array.from({ length: 50 }, (_, i) => i + 1));
      assert.equal(rec.ofType("reset").length, 0, "no loss to report");
      const resubscribed = rec.ofType("subscribed").filter((e) => e.room === room);
      assert.equal(resubscribed.length, 2);
      assert.equal(resubscribed[1]!.recovered, true);
    });

    test("says recovered = false, and the SDK reports the loss, when history no longer reaches back", async ({ cleanup }) => {
      const small = await startBroker({ historySize: 5 });
      cleanup(() => small.close());
      const room = "trimmed";
      const proxy = await startCuttableProxy(small.port);
      cleanup(() => proxy.close());
      const sub = clientFor(proxy.url, "tina", p).subscribe([room], { backoff: { baseMs: 20, maxMs: 200 } });
      cleanup(() => sub.close());
      const rec = new Recorder(sub);
      await rec.subscribedTo(room);
      const pub = clientFor(small.url, "pete", p);
      for (let i = 1; i <= 3; i++) await pub.publish(room, `m${i}`);
      await rec.until((r) => r.messages(room).length === 3, "first 3");
      proxy.blocked = true;
      proxy.cut();
      for (let i = 4; i <= 20; i++) await pub.publish(room, `m${i}`); // only 16..20 stay retained
      proxy.blocked = false;
      await rec.until((r) => r.ofType("subscribed").length === 2, "resubscribed");
      await pub.publish(room, "m21");
      await rec.until((r) => r.contents(room).includes("m21"), "live message after the resume");
      const again = rec.ofType("subscribed")[1]!;
      assert.equal(again.recovered, false);
      const [reset] = rec.ofType("reset");
      assert.ok(reset, "the application is told");
      assert.equal(reset.reason, "lost");
      assert.equal(reset.skipped, 17n);
      assert.deepEqual(rec.sequences(room), [1, 2, 3, 21], "never a silent hole: 4..20 only behind the reset");
    });

    test("tells resuming clients of a restarted in-memory broker that their lineage is gone", async ({ cleanup }) => {
      let first = await startBroker();
      const proxy = await startCuttableProxy(first.port);
      cleanup(() => proxy.close());
      const room = "restart";
      const sub = clientFor(proxy.url, "uma", p).subscribe([room], { backoff: { baseMs: 20, maxMs: 200 } });
      cleanup(() => sub.close());
      const rec = new Recorder(sub);
      await rec.subscribedTo(room);
      await clientFor(first.url, "pete", p).publish(room, "before restart");
      await rec.until((r) => r.messages(room).length === 1, "message before restart");
      const second = await startBroker();
      cleanup(() => second.close());
      proxy.retarget(second.port);
      await first.close();
      await rec.until((r) => r.ofType("subscribed").length === 2, "resubscribed to the new broker");
      await clientFor(second.url, "pete", p).publish(room, "after restart");
      await rec.until((r) => r.contents(room).includes("after restart"), "message after restart");
      assert.equal(rec.ofType("subscribed")[1]!.recovered, false);
      const [reset] = rec.ofType("reset");
      assert.equal(reset?.reason, "epoch_changed");
      assert.notEqual(rec.messages(room)[0]!.epoch, rec.messages(room)[1]!.epoch);
      assert.deepEqual(rec.sequences(room), [1, 1]);
    });
  });
}
