/**
 * The Redis engine's close() with publishes still in flight. close() is
 * documented to wait for the replies of calls already made, so that every
 * publish the broker started before shutting down either is stored and
 * resolves, or rejects (and its client retries); none may resolve without
 * being stored, and none may hang. ioredis queues commands for its
 * auto-pipeline and sends QUIT straight away, which is what this test
 * watches.
 */
import assert from "node:assert/strict";
import { afterAll, describe, it } from "vitest";
import { createRedisEngine } from "../../src/engine/redis.js";
import { deleteKeys, SHARED_REDIS_URL, testPrefix } from "../support/redis.js";

const prefix = testPrefix("close");
afterAll(() => deleteKeys(SHARED_REDIS_URL, prefix));

const open = () =>
  createRedisEngine({
    url: SHARED_REDIS_URL,
    prefix,
    presenceTtlMs: 1000,
    retention: { historySize: 10_000, historyTtlMs: 0, dedupeWindowMs: 0 },
    listener: () => {},
  });

const draft = (room: string, content: string) => ({ room, sender: "u", content, payload: new Uint8Array(), attributes: {}, timeMs: 1, clientMessageId: "" });

describe("redis engine: close() with publishes in flight", () => {
  it("resolves every publish made before close(), each stored at the position it returned", async () => {
    const room = "closing";
    const engine = open();
    await engine.publish(draft(room, "ready")); // connected: what follows is queued behind a live connection
    // Made in one turn, not awaited: they sit in ioredis's auto-pipeline when close() starts.
    const publishes = Array.from({ length: 300 }, (_, i) =>
      engine.publish(draft(room, `m${i}`)).then(
        (result) => ({ content: `m${i}`, sequence: result.message.sequence }),
        (error: unknown) => ({ content: `m${i}`, error: String(error) }),
      ),
    );
    await engine.close();
    const settled = await Promise.race([Promise.all(publishes), new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 10_000))]);
    assert.notEqual(settled, "hung", "a publish made before close() neither resolved nor rejected within 10 s");
    const reader = open();
    try {
      const page = await reader.history(room, { after: 0n, before: 0n, limit: 1000, direction: "forward" });
      const stored = new Map(page.messages.map((m) => [m.content, m.sequence]));
      const results = settled as Array<{ content: string; sequence?: bigint; error?: string }>;
      for (const result of results) if (result.sequence !== undefined) assert.equal(stored.get(result.content), result.sequence, `${result.content} resolved at ${result.sequence} but history has ${stored.get(result.content)}`);
      const failed = results.filter((r) => r.error !== undefined);
      assert.deepEqual(failed, [], `close() is to wait for calls already made; ${failed.length} of ${results.length} rejected`);
      assert.equal(stored.size, results.length + 1);
    } finally {
      await reader.close();
    }
  });
});
