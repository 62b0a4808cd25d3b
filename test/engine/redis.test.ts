import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { afterAll, describe, it } from "vitest";
import { createRedisEngine } from "../../src/engine/redis.js";
import { deleteKeys, SHARED_REDIS_URL, testPrefix } from "../support/redis.js";
import { engineConformance } from "./conformance.js";

const prefix = testPrefix("conformance");
afterAll(() => deleteKeys(SHARED_REDIS_URL, prefix));

const presenceTtlMs = 1000;
engineConformance("redis", (options) => createRedisEngine({ ...options, url: SHARED_REDIS_URL, prefix, presenceTtlMs }), { presenceTtlMs });

describe("redis engine: reads create nothing", () => {
  it("leaves no key behind for rooms that are only read, joined or cleared before their first publish", async () => {
    const own = testPrefix("reads");
    const engine = createRedisEngine({
      url: SHARED_REDIS_URL,
      prefix: own,
      presenceTtlMs,
      retention: { historySize: 10, historyTtlMs: 0, dedupeWindowMs: 0 },
      listener: () => {},
    });
    const entry = { user: "u", sessionId: "s", device: "", state: "online" as const, joinedAtMs: 1, sinceMs: 1, lastActiveMs: 1 };
    const redis = new Redis(SHARED_REDIS_URL);
    const keysUnder = async () => (await redis.keys(`${own.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`)).sort();
    try {
      for (let i = 0; i < 50; i++) {
        const room = `unknown-${i}`;
        await engine.history(room, { after: 0n, before: 0n, limit: 10, direction: "forward" });
        await engine.position(room);
        await engine.presenceSet(room, entry, "join");
        await engine.presenceRemove(room, "s");
        await engine.clear(room);
      }
      assert.deepEqual(await keysUnder(), []);
      await engine.publish({ room: "real", sender: "u", content: "x", payload: new Uint8Array(), attributes: {}, timeMs: 1, clientMessageId: "" });
      assert.ok((await keysUnder()).length > 0, "a publish does create the room (the check above can fail)");
    } finally {
      await engine.close();
      redis.disconnect();
      await deleteKeys(SHARED_REDIS_URL, own);
    }
  });
});

describe("redis engine: sweep() across nodes", () => {
  it("keeps an idle room another node subscribes to, forgets it once nobody does, and leaves no key of it", async () => {
    const own = testPrefix("sweep");
    const clock = { now: 1_700_000_000_000 };
    const open = () =>
      createRedisEngine({
        url: SHARED_REDIS_URL,
        prefix: own,
        presenceTtlMs,
        retention: { historySize: 10, historyTtlMs: 1000, dedupeWindowMs: 0 },
        listener: () => {},
        now: () => clock.now,
      });
    const [a, b] = [open(), open()];
    const redis = new Redis(SHARED_REDIS_URL);
    const keysOf = async (room: string) => redis.keys(`${own.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}{${room}}*`);
    try {
      for (const room of ["held", "idle"])
        await a.publish({ room, sender: "u", content: "x", payload: new Uint8Array(), attributes: {}, timeMs: clock.now, clientMessageId: "" });
      await b.watch("held"); // a session on node b
      clock.now += 5000; // both rooms' only message is past the TTL
      assert.equal(await a.sweep!(), 1, "node a forgets only the room nobody holds");
      assert.deepEqual(await keysOf("idle"), []);
      assert.equal((await a.position("held")).sequence, 1n, "the room node b's session holds is kept");
      await b.unwatch("held");
      assert.equal(await a.sweep!(), 1);
      assert.deepEqual([await keysOf("held"), await a.position("held")], [[], { epoch: "", sequence: 0n }]);
    } finally {
      await Promise.all([a.close(), b.close()]);
      redis.disconnect();
      await deleteKeys(SHARED_REDIS_URL, own);
    }
  });
});
