import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/es/grpc/health/v1/health_pb.js";
import { createSeqcastClient, type PublishResult } from "../../src/client/index.js";
import { redisNodeArgs, startOwnRedis, testPrefix, type OwnRedis } from "../support/redis.js";
import { describe, Recorder, test, testToken, waitUntil, type ServeProcess } from "../support/fixtures.js";

/**
 * Broker nodes (`seqcast serve --engine redis`, real processes) when their
 * Redis fails mid-flood. Each test runs a redis-server of its own.
 */
describe("broker nodes when Redis fails", () => {
  type Serve = (args?: string[]) => Promise<ServeProcess>;
  type Cleanup = (fn: () => unknown) => void;

  async function setup(serve: Serve, cleanup: Cleanup, options: { aof?: boolean } = {}) {
    const redis = await startOwnRedis(options);
    cleanup(() => redis.stop());
    const prefix = testPrefix("outage");
    // History keeps the whole flood, so the checks can read all of it back.
    const nodes = await Promise.all([0, 1].map(() => serve(redisNodeArgs(redis.url, prefix, ["--history-size", "100000"]))));
    return { redis, nodes };
  }

  /** Floods `room` from one publisher per node, retrying through the outage as the SDK does, until stopped. */
  function flood(nodes: ServeProcess[], room: string) {
    const acked: Array<PublishResult & { content: string }> = [];
    let stop = false;
    const running = nodes.map(async (node, i) => {
      const pub = createSeqcastClient({
        baseUrl: node.url,
        token: testToken(`pub${i}`),
        maxPublishAttempts: 10_000,
        publishBackoff: { baseMs: 20, maxMs: 200 },
      });
      for (let k = 0; !stop; ) {
        const batch = Array.from({ length: 8 }, () => {
          const content = `p${i}-${k++}`;
          return pub.publish(room, content).then((r) => acked.push({ ...r, content }));
        });
        await Promise.all(batch);
      }
    });
    return {
      acked,
      async stop() {
        stop = true;
        await Promise.all(running);
      },
    };
  }

  function subscribers(nodes: ServeProcess[], room: string, cleanup: Cleanup) {
    return nodes.map((node, i) => {
      const recorder = new Recorder(
        createSeqcastClient({ baseUrl: node.url, token: testToken(`sub${i}`) }).subscribe([room], { backoff: { baseMs: 20, maxMs: 300 } }),
      );
      cleanup(() => recorder.subscription.close());
      return recorder;
    });
  }

  /** Polls grpc.health.v1 of a node every 100 ms, recording each change. */
  function watchHealth(node: ServeProcess, cleanup: Cleanup) {
    const health = createClient(Health, createGrpcTransport({ baseUrl: node.url }));
    const seen: string[] = [];
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        const status = await health
          .check({ service: "seqcast.v1.PubSubService" }, { timeoutMs: 1000 })
          .then((r) => Status[r.status], () => "no answer");
        if (seen.at(-1) !== status) seen.push(status);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    cleanup(async () => {
      stop = true;
      await loop;
    });
    return seen;
  }

  async function allHistory(node: ServeProcess, room: string) {
    const reader = createSeqcastClient({ baseUrl: node.url, token: testToken("checker") });
    const messages = [];
    for (let after = 0n; ; ) {
      const page = await reader.history(room, { after, limit: 1000 });
      messages.push(...page.messages);
      if (!page.hasMore) return { messages, epoch: page.epoch };
      after = page.messages.at(-1)!.sequence;
    }
  }

  const during = async (redis: OwnRedis, acked: unknown[], outage: () => Promise<void>) => {
    const before = acked.length;
    await waitUntil(() => acked.length > before + 200, "publishes before the outage", 30_000);
    await outage();
    const after = acked.length;
    await waitUntil(() => acked.length > after + 200, "publishes after the outage", 60_000);
    return { before: after, redis };
  };

  test("a paused Redis: NOT_SERVING meanwhile, no acknowledged message lost, healed without a restart", async ({ serve, cleanup }) => {
    const { redis, nodes } = await setup(serve, cleanup);
    const room = "outage.pause";
    const subs = subscribers(nodes, room, cleanup);
    await Promise.all(subs.map((r) => r.subscribedTo(room)));
    const health = nodes.map((node) => watchHealth(node, cleanup));
    await waitUntil(() => health.every((h) => h.at(-1) === "SERVING"), "serving");
    const load = flood(nodes, room);
    let pausedMs = 0;
    await during(redis, load.acked, async () => {
      redis.pause();
      const pausedAt = Date.now();
      await waitUntil(() => health.every((h) => h.includes("NOT_SERVING")), () => `NOT_SERVING on both nodes: ${JSON.stringify(health)}`, 20_000);
      redis.resume();
      pausedMs = Date.now() - pausedAt;
      await waitUntil(() => health.every((h) => h.at(-1) === "SERVING"), "SERVING again", 20_000);
    });
    await load.stop();
    const { messages } = await allHistory(nodes[0]!, room);
    const n = messages.length;
    console.log(`# redis paused ${pausedMs} ms mid-flood: ${load.acked.length} acknowledged, ${n} stored; health ${JSON.stringify(health)}`);
    assert.deepEqual(messages.map((m) => Number(m.sequence)), Array.from({ length: n }, (_, i) => i + 1), "gapless");
    const stored = new Map(messages.map((m) => [m.sequence, m.content]));
    for (const a of load.acked) assert.equal(stored.get(a.sequence), a.content, `acknowledged ${a.content} is stored at ${a.sequence}`);
    assert.equal(new Set(messages.map((m) => m.content)).size, n, "no retry stored twice");
    assert.equal(load.acked.length, n, "every stored message was acknowledged");
    for (const r of subs) {
      await r.until((x) => x.messages(room).length >= n, `all ${n} messages`, 30_000);
      assert.deepEqual(r.sequences(room), Array.from({ length: n }, (_, i) => i + 1), "each subscriber: every message once, in order");
      assert.equal(r.ofType("reset").length, 0);
    }
  });

  test("Redis restarted without persistence: the loss is never silent (new epoch, resets, recovered = false, no sequence reused)", async ({ serve, cleanup }) => {
    const { redis, nodes } = await setup(serve, cleanup);
    const room = "outage.lost";
    const subs = subscribers(nodes, room, cleanup);
    await Promise.all(subs.map((r) => r.subscribedTo(room)));
    const load = flood(nodes, room);
    await during(redis, load.acked, async () => {
      await redis.kill("SIGKILL");
      await redis.restart();
    });
    await load.stop();
    const epochs = [...new Set(load.acked.map((a) => a.epoch))];
    console.log(`# redis lost its data mid-flood: ${load.acked.length} acknowledged over epochs ${epochs.join(", ")}`);
    assert.equal(epochs.length, 2, "one lineage before, a new one after");
    const positions = load.acked.map((a) => `${a.epoch}:${a.sequence}`);
    assert.equal(new Set(positions).size, positions.length, "no (epoch, sequence) acknowledged twice");
    const { messages, epoch } = await allHistory(nodes[1]!, room);
    assert.equal(epoch, epochs[1]);
    const n = messages.length;
    assert.deepEqual(messages.map((m) => Number(m.sequence)), Array.from({ length: n }, (_, i) => i + 1), "the new lineage is gapless");
    for (const r of subs) {
      await r.until((x) => x.messages(room).filter((m) => m.epoch === epoch).length >= n, "the new lineage delivered", 30_000);
      const [reset] = r.ofType("reset");
      assert.ok(reset, "the subscriber is told");
      assert.equal(reset.reason, "epoch_changed");
      const seen = r.messages(room);
      const old = seen.filter((m) => m.epoch === epochs[0]).map((m) => Number(m.sequence));
      const fresh = seen.filter((m) => m.epoch === epoch).map((m) => Number(m.sequence));
      assert.deepEqual(old, Array.from({ length: old.length }, (_, i) => i + 1), "old lineage: in order, once");
      assert.deepEqual(fresh, Array.from({ length: n }, (_, i) => i + 1), "new lineage: in order, once");
      assert.equal(seen.length, old.length + fresh.length);
    }
    // A client resuming from a position of the lost lineage is told so.
    const lastOld = subs[0]!.messages(room).filter((m) => m.epoch === epochs[0]).at(-1)!;
    const late = new Recorder(
      createSeqcastClient({ baseUrl: nodes[0]!.url, token: testToken("late") }).subscribe([room], {
        since: { [room]: { epoch: lastOld.epoch, sequence: lastOld.sequence } },
      }),
    );
    cleanup(() => late.subscription.close());
    await late.subscribedTo(room);
    assert.equal(late.ofType("subscribed")[0]!.recovered, false);
    await late.until((r) => r.ofType("reset").length > 0, "a reset");
    assert.equal(late.ofType("reset")[0]!.reason, "epoch_changed");
  });

  test("Redis with AOF restarted mid-flood: every acknowledged message survives, one lineage", async ({ serve, cleanup }) => {
    const { redis, nodes } = await setup(serve, cleanup, { aof: true });
    const room = "outage.aof";
    const subs = subscribers(nodes, room, cleanup);
    await Promise.all(subs.map((r) => r.subscribedTo(room)));
    const load = flood(nodes, room);
    await during(redis, load.acked, async () => {
      await redis.kill("SIGKILL");
      await redis.restart();
    });
    await load.stop();
    const { messages } = await allHistory(nodes[0]!, room);
    const n = messages.length;
    console.log(`# redis (AOF, appendfsync always) killed mid-flood: ${load.acked.length} acknowledged, ${n} stored`);
    assert.equal(new Set(load.acked.map((a) => a.epoch)).size, 1, "the epoch survived");
    assert.deepEqual(messages.map((m) => Number(m.sequence)), Array.from({ length: n }, (_, i) => i + 1), "gapless");
    const stored = new Map(messages.map((m) => [m.sequence, m.content]));
    for (const a of load.acked) assert.equal(stored.get(a.sequence), a.content, `acknowledged ${a.content} survived at ${a.sequence}`);
    assert.equal(new Set(messages.map((m) => m.content)).size, n, "no retry stored twice");
    for (const r of subs) {
      await r.until((x) => x.messages(room).length >= n, `all ${n} messages`, 30_000);
      assert.deepEqual(r.sequences(room), Array.from({ length: n }, (_, i) => i + 1), "every message once, in order");
      assert.equal(r.ofType("reset").length, 0, "nothing lost to report");
    }
  });
});
