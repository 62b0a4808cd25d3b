import assert from "node:assert/strict";
import { createSeqcastClient, type PublishResult } from "../../src/client/index.js";
import { SubscriptionState } from "../../src/client/subscription.js";
import { deleteKeys, redisNodeArgs, SHARED_REDIS_URL, testPrefix } from "../support/redis.js";
import { describe, exited, pause, Recorder, test, testToken, waitUntil, type ServeProcess } from "../support/fixtures.js";

/**
 * Several `seqcast serve --engine redis` processes on the shared Redis, each
 * test under a key prefix of its own: a client sees the same order, history
 * and presence whichever node it is connected to, and survives its node.
 */
describe("several broker nodes on one Redis", () => {
  async function nodes(serve: (args?: string[]) => Promise<ServeProcess>, cleanup: (fn: () => unknown) => void, count: number, extra: string[] = []) {
    const prefix = testPrefix("nodes");
    cleanup(() => deleteKeys(SHARED_REDIS_URL, prefix));
    return Promise.all(Array.from({ length: count }, () => serve(redisNodeArgs(SHARED_REDIS_URL, prefix, extra))));
  }
  const subscriber = (urls: string[], user: string, rooms: string[], cleanup: (fn: () => unknown) => void) => {
    const recorder = new Recorder(
      createSeqcastClient({ baseUrls: urls, token: testToken(user) }).subscribe(rooms, { device: user, backoff: { baseMs: 20, maxMs: 300 } }),
    );
    cleanup(() => recorder.subscription.close());
    return recorder;
  };

  test("gives every subscriber on every node one gapless order of 4 publishers on different nodes", async ({ serve, cleanup }) => {
    const [a, b, c] = await nodes(serve, cleanup, 3);
    const room = "lobby";
    const subs = [a!, a!, b!, b!, c!, c!].map((node, i) => subscriber([node.url], `s${i}`, [room], cleanup));
    await Promise.all(subs.map((r) => r.subscribedTo(room)));
    const publishers = [a!, b!, c!, a!].map((node, i) => createSeqcastClient({ baseUrl: node.url, token: testToken(`p${i}`) }));
    const started = Date.now();
    const acks = await Promise.all(
      publishers.map(async (pub, i) => {
        const positions: bigint[] = [];
        for (let batch = 0; batch < 10; batch++) {
          const sent = await Promise.all(Array.from({ length: 25 }, (_, j) => pub.publish(room, `${i}:${batch * 25 + j}`)));
          positions.push(...sent.map((s) => s.sequence));
        }
        return positions;
      }),
    );
    const all = acks.flat().sort((x, y) => Number(x - y));
    assert.deepEqual(all, Array.from({ length: 1000 }, (_, i) => BigInt(i + 1)), "acks are 1..1000 across nodes: no hole, no reuse");
    for (const r of subs) await r.until((x) => x.messages(room).length >= 1000, "1000 messages", 30_000);
    console.log(`# 1000 publishes from 4 publishers on 3 nodes reached 6 subscribers in ${Date.now() - started} ms`);
    const reference = subs[0]!.contents(room);
    for (const r of subs) {
      assert.deepEqual(r.sequences(room), Array.from({ length: 1000 }, (_, i) => i + 1));
      assert.deepEqual(r.contents(room), reference, "every subscriber on every node sees the same order");
    }
    for (let i = 0; i < 4; i++) {
      const mine = reference.filter((x) => x.startsWith(`${i}:`)).map((x) => Number(x.split(":")[1]));
      assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `publisher ${i} in call order`);
    }
    // History is the same through every node.
    const pages = await Promise.all([a!, b!, c!].map((node) => createSeqcastClient({ baseUrl: node.url, token: testToken("h") }).history(room, { after: 990n })));
    for (const page of pages) assert.deepEqual(page.messages.map((m) => m.content), reference.slice(990));
  });

  test("shows presence joins and leaves across nodes", async ({ serve, cleanup }) => {
    const [a, b, c] = await nodes(serve, cleanup, 3);
    const room = "presence.across";
    const watcher = subscriber([a!.url], "walter", [room], cleanup);
    await watcher.subscribedTo(room);
    const bob = subscriber([b!.url], "bob", [room], cleanup);
    await watcher.until((r) => r.ofType("presence").some((e) => e.kind === "join" && e.entry.user === "bob"), "bob's join, made on another node");
    const listed = await createSeqcastClient({ baseUrl: c!.url, token: testToken("carol") }).presence(room);
    assert.deepEqual(listed.entries.map((e) => e.user).sort(), ["bob", "walter"], "a third node lists both");
    await bob.subscription.close();
    await watcher.until((r) => r.ofType("presence").some((e) => e.kind === "leave" && e.entry.user === "bob"), "bob's leave");
    const after = await createSeqcastClient({ baseUrl: c!.url, token: testToken("carol") }).presence(room);
    assert.deepEqual(after.entries.map((e) => e.user), ["walter"]);
  });

  test("moves a killed node's subscribers to another node, resuming with every message exactly once", async ({ serve, cleanup }) => {
    // History deep enough for what flows while a subscriber moves: a move is not a loss.
    const [a, b, c] = await nodes(serve, cleanup, 3, ["--history-size", "100000"]);
    const room = "failover";
    // Three subscribers prefer node c, one stays on a.
    const onC = [0, 1, 2].map((i) => subscriber([c!.url, a!.url, b!.url], `c${i}`, [room], cleanup));
    const onA = subscriber([a!.url], "a0", [room], cleanup);
    const subs = [...onC, onA];
    await Promise.all(subs.map((r) => r.subscribedTo(room)));
    let stop = false;
    const acked: PublishResult[] = [];
    const flood = [a!, b!].map(async (node, i) => {
      const pub = createSeqcastClient({ baseUrl: node.url, token: testToken(`pub${i}`) });
      for (let k = 0; !stop; ) {
        const batch = await Promise.all(Array.from({ length: 10 }, () => pub.publish(room, `p${i}-${k++}`)));
        acked.push(...batch);
      }
    });
    await waitUntil(() => acked.length > 300, "publishes before the kill", 30_000);
    c!.child.kill("SIGKILL");
    await exited(c!.child);
    const killedAt = acked.length;
    for (const r of onC) await r.until((x) => x.ofType("state").some((e) => e.to === SubscriptionState.Reconnecting), "noticed its node died");
    for (const r of onC) await r.subscription.waitFor(SubscriptionState.Connected);
    await waitUntil(() => acked.length > killedAt + 300, "publishes after the failover", 30_000);
    stop = true;
    await Promise.all(flood);
    const total = acked.length;
    assert.deepEqual(
      acked.map((r) => r.sequence).sort((x, y) => Number(x - y)),
      Array.from({ length: total }, (_, i) => BigInt(i + 1)),
    );
    for (const r of subs) {
      await r.until((x) => x.messages(room).length >= total, `all ${total} messages`, 30_000);
      assert.deepEqual(r.sequences(room), Array.from({ length: total }, (_, i) => i + 1), "every message exactly once, in order");
      assert.equal(r.ofType("reset").length, 0, "nothing lost to report");
    }
    for (const r of onC) {
      const again = r.ofType("subscribed").filter((e) => e.room === room);
      assert.ok(again.length >= 2 && again.slice(1).every((e) => e.recovered), "resumed on another node with recovered = true");
    }
    console.log(`# killed a node after ${killedAt} of ${total} publishes; its 3 subscribers resumed elsewhere`);
  });

  test("takes a killed node's sessions out of the other nodes' presence within the lease", async ({ serve, cleanup }) => {
    const ttl = 2000;
    const [a, b] = await nodes(serve, cleanup, 2, ["--redis-presence-ttl", `${ttl}ms`]);
    const room = "presence.lease";
    const watcher = subscriber([a!.url], "walter", [room], cleanup);
    await watcher.subscribedTo(room);
    subscriber([b!.url], "zed", [room], cleanup); // zed, on the node that will be killed
    await watcher.until((r) => r.ofType("presence").some((e) => e.kind === "join" && e.entry.user === "zed"), "zed's join");
    // A live node keeps refreshing: zed is still there after more than a lease.
    await pause(ttl * 1.5);
    const alive = await createSeqcastClient({ baseUrl: a!.url, token: testToken("w") }).presence(room);
    assert.deepEqual(alive.entries.map((e) => e.user).sort(), ["walter", "zed"]);
    assert.equal(watcher.ofType("presence").filter((e) => e.entry.user === "zed" && e.kind === "leave").length, 0);
    b!.child.kill("SIGKILL");
    const killedAt = Date.now();
    await exited(b!.child);
    await watcher.until((r) => r.ofType("presence").some((e) => e.kind === "leave" && e.entry.user === "zed"), "zed's leave after its node died", 20_000);
    console.log(`# a killed node's session left the others' presence after ${Date.now() - killedAt} ms (lease ${ttl} ms; documented bound: lease + up to 1 s)`);
    const left = await createSeqcastClient({ baseUrl: a!.url, token: testToken("w") }).presence(room);
    assert.deepEqual(left.entries.map((e) => e.user), ["walter"]);
  });
});
