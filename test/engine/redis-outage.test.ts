import assert from "node:assert/strict";
import { afterEach, describe, it } from "vitest";
import { Redis } from "ioredis";
import type { EngineStatusReport, MessageDraft, RoomEvent } from "../../src/engine/engine.js";
import { createRedisEngine, type RedisEngine } from "../../src/engine/redis.js";
import { startOwnRedis, testPrefix, type OwnRedis } from "../support/redis.js";
import { waitUntil } from "../support/wait.js";

/**
 * The Redis engine when Redis fails: each test runs a redis-server of its
 * own (never the shared one) and kills, pauses or restarts it.
 */

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function ownRedis(options: { aof?: boolean } = {}): Promise<OwnRedis> {
  const redis = await startOwnRedis(options);
  cleanups.push(() => redis.stop());
  return redis;
}

interface Node {
  engine: RedisEngine;
  events: Array<{ room: string; event: RoomEvent }>;
  statuses: EngineStatusReport[];
}

function node(url: string, prefix: string, commandTimeoutMs = 500): Node {
  const events: Node["events"] = [];
  const engine = createRedisEngine({
    url,
    prefix,
    commandTimeoutMs,
    retention: { historySize: 10_000, historyTtlMs: 0, dedupeWindowMs: 120_000 },
    listener: (room, event) => events.push({ room, event }),
  });
  const statuses: EngineStatusReport[] = [];
  engine.onStatusChange((report) => statuses.push(report));
  cleanups.push(() => engine.close());
  return { engine, events, statuses };
}

let n = 0;
const draft = (room: string, content: string): MessageDraft => ({
  room,
  sender: "alice",
  content,
  payload: new Uint8Array(0),
  attributes: {},
  timeMs: Date.now(),
  clientMessageId: `cm-${content}-${n++}`,
});

const summary = (events: Node["events"], room: string) =>
  events
    .filter((e) => e.room === room)
    .map((e) => (e.event.type === "message" ? `${e.event.message.epoch.slice(0, 4)}#${e.event.message.sequence}` : e.event.type === "reset" ? `reset:${e.event.position.epoch.slice(0, 4)}` : e.event.type));

const okAgain = (node: Node) => waitUntil(() => node.engine.status().status === "ok", "status ok", 15_000);

describe("redis engine: Redis fails", () => {
  it("fails calls while Redis is down, heals by itself, and never reuses a sequence under the old epoch when Redis lost its data", async () => {
    const redis = await ownRedis();
    const prefix = testPrefix("down");
    const [a, b] = [node(redis.url, prefix), node(redis.url, prefix)];
    const room = "down.room";
    await a.engine.watch(room);
    const before = await Promise.all([1, 2, 3].map((i) => b.engine.publish(draft(room, `before${i}`))));
    const oldEpoch = before[0]!.message.epoch;
    await waitUntil(() => summary(a.events, room).length === 3, "3 delivered");

    await redis.kill();
    await waitUntil(() => a.engine.status().status === "unavailable" && b.engine.status().status === "unavailable", "both unavailable");
    const started = Date.now();
    await assert.rejects(b.engine.publish(draft(room, "during")), /unreachable|closed|Connection|ECONNREFUSED/i);
    console.log(`# publish while redis is down failed after ${Date.now() - started} ms`);
    assert.match(b.engine.status().reason, /unreachable/);

    // Restarted without persistence: every key is gone.
    await redis.restart();
    await Promise.all([okAgain(a), okAgain(b)]);
    const after = await b.engine.publish(draft(room, "after"));
    assert.notEqual(after.message.epoch, oldEpoch, "a new lineage, not the old epoch restarting at 1");
    assert.equal(after.message.sequence, 1n);
    assert.deepEqual(await a.engine.position(room), { epoch: after.message.epoch, sequence: 1n });
    await waitUntil(() => summary(a.events, room).length === 5, () => `reset and the new message: ${summary(a.events, room)}`);
    const e = oldEpoch.slice(0, 4);
    const f = after.message.epoch.slice(0, 4);
    assert.deepEqual(summary(a.events, room), [`${e}#1`, `${e}#2`, `${e}#3`, `reset:${f}`, `${f}#1`]);
    assert.deepEqual(
      a.statuses.map((s) => s.status),
      ["ok", "unavailable", "ok"],
    );
  });

  it("a paused Redis: calls time out, health says so, and after it resumes nothing is lost or doubled", async () => {
    const redis = await ownRedis();
    const prefix = testPrefix("pause");
    const [a, b] = [node(redis.url, prefix), node(redis.url, prefix)];
    const room = "pause.room";
    await a.engine.watch(room);
    let stop = false;
    const acked: bigint[] = [];
    let failures = 0;
    const flood = (async () => {
      for (let i = 0; !stop; i++) {
        const d = draft(room, `m${i}`);
        // A failed publish is retried with its client message id, as the SDK does.
        for (;;) {
          try {
            acked.push((await b.engine.publish(d)).message.sequence);
            break;
          } catch {
            failures++;
            await new Promise((r) => setTimeout(r, 50));
            if (stop) return;
          }
        }
      }
    })();
    await waitUntil(() => acked.length > 50, "publishes before the pause");
    redis.pause();
    await waitUntil(() => b.engine.status().status === "unavailable", "unavailable while paused", 10_000);
    const failuresDuringPause = failures;
    redis.resume();
    await Promise.all([okAgain(a), okAgain(b)]);
    const resumedAt = acked.length;
    await waitUntil(() => acked.length > resumedAt + 50, "publishes after the resume", 15_000);
    stop = true;
    await flood;
    const page = await b.engine.history(room, { after: 0n, before: 0n, limit: 10_000, direction: "forward" });
    const total = page.messages.length;
    console.log(`# paused mid-flood: ${failuresDuringPause} failed calls while paused, ${acked.length} acknowledged, ${total} stored`);
    assert.ok(failuresDuringPause > 0);
    assert.deepEqual(page.messages.map((m) => m.sequence), Array.from({ length: total }, (_, i) => BigInt(i + 1)), "gapless");
    assert.equal(new Set(page.messages.map((m) => m.content)).size, total, "no retry stored twice");
    for (const sequence of acked) assert.ok(sequence <= BigInt(total), "every acknowledged publish is stored");
    await waitUntil(() => summary(a.events, room).length >= total, "the watcher catches up", 15_000);
    assert.deepEqual(
      a.events.filter((e) => e.room === room).map((e) => (e.event.type === "message" ? e.event.message.sequence : -1n)),
      Array.from({ length: total }, (_, i) => BigInt(i + 1)),
      "the watcher saw every message once, in order",
    );
  });

  it("catches up from the stream what pub/sub lost while a node's subscription connection was cut", async () => {
    const redis = await ownRedis();
    const prefix = testPrefix("cut");
    const [a, b] = [node(redis.url, prefix), node(redis.url, prefix)];
    const room = "cut.room";
    const pattern = "cut.*";
    await a.engine.watch(room);
    await a.engine.watch(pattern);
    await b.engine.publish(draft("cut.other", "o1")); // a room a knows through its pattern
    const admin = new Redis(redis.url);
    cleanups.push(async () => admin.disconnect());
    let published = 0;
    let stop = false;
    const flood = (async () => {
      while (!stop) {
        await Promise.all([b.engine.publish(draft(room, `m${published}`)), b.engine.publish(draft("cut.other", `o${published}`))]);
        published++;
      }
    })();
    for (let cut = 0; cut < 3; cut++) {
      await waitUntil(() => published > (cut + 1) * 30, "publishes between cuts");
      await admin.client("KILL", "TYPE", "pubsub");
    }
    await waitUntil(() => published > 150, "publishes after the last cut");
    stop = true;
    await flood;
    assert.ok(a.statuses.filter((s) => s.status === "unavailable").length >= 1, "the node noticed its subscription connection drop");
    for (const r of [room, "cut.other"]) {
      const total = Number((await b.engine.position(r)).sequence);
      await waitUntil(() => summary(a.events, r).length >= total, () => `${r}: caught up (${summary(a.events, r).length} of ${total})`, 15_000);
      const sequences = a.events.filter((e) => e.room === r).map((e) => (e.event.type === "message" ? Number(e.event.message.sequence) : -1));
      assert.deepEqual(sequences, Array.from({ length: total }, (_, i) => i + 1), `${r}: every message once, in order`);
    }
  });

  it("a Redis flushed under live connections: the next publish starts a new epoch and watchers get a reset before it", async () => {
    const redis = await ownRedis();
    const prefix = testPrefix("flush");
    const [a, b] = [node(redis.url, prefix), node(redis.url, prefix)];
    const room = "flush.room";
    await a.engine.watch(room);
    const first = await b.engine.publish(draft(room, "one"));
    await b.engine.publish(draft(room, "two"));
    const admin = new Redis(redis.url);
    cleanups.push(async () => admin.disconnect());
    await admin.flushall(); // a Redis of this test's own: never the shared one
    const after = await b.engine.publish(draft(room, "three"));
    assert.notEqual(after.message.epoch, first.message.epoch);
    assert.equal(after.message.sequence, 1n, "sequence 1 of a new lineage, not 3 (or 1) of the old one");
    await waitUntil(() => summary(a.events, room).length === 4, () => `4 events: ${summary(a.events, room)}`);
    const [e, f] = [first.message.epoch.slice(0, 4), after.message.epoch.slice(0, 4)];
    assert.deepEqual(summary(a.events, room), [`${e}#1`, `${e}#2`, `reset:${f}`, `${f}#1`]);
    assert.equal(a.engine.status().status, "ok", "nothing was disconnected");
  });

  it("with AOF persistence, a restarted Redis keeps epochs and acknowledged messages", async () => {
    const redis = await ownRedis({ aof: true });
    const prefix = testPrefix("aof");
    const a = node(redis.url, prefix);
    const room = "aof.room";
    const acked = await Promise.all(Array.from({ length: 100 }, (_, i) => a.engine.publish(draft(room, `m${i}`))));
    await redis.kill("SIGKILL");
    await redis.restart();
    await okAgain(a);
    const page = await a.engine.history(room, { after: 0n, before: 0n, limit: 1000, direction: "forward" });
    assert.deepEqual(page.position, { epoch: acked[0]!.message.epoch, sequence: 100n });
    assert.deepEqual(
      page.messages.map((m) => [m.sequence, m.content]),
      acked.map((r) => [r.message.sequence, r.message.content]),
    );
    const next = await a.engine.publish(draft(room, "next"));
    assert.deepEqual([next.message.epoch, next.message.sequence], [acked[0]!.message.epoch, 101n]);
  });
});
