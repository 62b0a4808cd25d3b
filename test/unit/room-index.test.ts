import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { RoomIndex } from "../../src/broker/room-index.js";
import type { Session } from "../../src/broker/session.js";

/** The room index alone: which sessions hold what, and when the engine is asked to watch and unwatch. */
const session = (name: string) => ({ name }) as unknown as Session;
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("room index", () => {
  it("watches a name once while any session holds it, and unwatches after the last one leaves", async () => {
    const calls: string[] = [];
    const index = new RoomIndex(
      async (name) => void calls.push(`watch ${name}`),
      async (name) => void calls.push(`unwatch ${name}`),
    );
    const [a, b] = [session("a"), session("b")];
    await index.attach(a, "general");
    await index.attach(b, "general");
    await index.attach(b, "sports.*");
    assert.equal(index.sessionsOf("general"), 2);
    assert.equal(index.sessionsOf("sports.*"), 0, "patterns are not rooms");
    index.detach(a, "general");
    index.detach(a, "general"); // not held: nothing happens
    await tick();
    assert.deepEqual(calls, ["watch general", "watch sports.*"]);
    index.detach(b, "general");
    index.detach(b, "sports.*");
    await tick();
    assert.deepEqual(calls, ["watch general", "watch sports.*", "unwatch general", "unwatch sports.*"]);
    assert.equal(index.sessionsOf("general"), 0);
  });

  it("visits holders by name, then by matching pattern, and never inboxes by pattern", async () => {
    const index = new RoomIndex(async () => {}, async () => {});
    const [a, b, c] = [session("a"), session("b"), session("c")];
    await index.attach(a, "sports.tennis");
    await index.attach(b, "sports.*");
    await index.attach(c, "*");
    const visits: string[] = [];
    const visit = (room: string) =>
      index.forEach(
        room,
        (s) => visits.push(`${room} ${(s as unknown as { name: string }).name}`),
        (s, pattern) => visits.push(`${room} ${(s as unknown as { name: string }).name} via ${pattern}`),
      );
    visit("sports.tennis");
    visit("@alice");
    assert.deepEqual(visits, ["sports.tennis a", "sports.tennis b via sports.*"]);
  });

  it("reports a failed watch to the joiner, and a failed unwatch to no one", async () => {
    let unwatched = 0;
    const index = new RoomIndex(
      async (name) => {
        if (name === "broken") throw new Error("engine down");
      },
      async () => {
        unwatched++;
        throw new Error("engine down");
      },
    );
    const a = session("a");
    await assert.rejects(index.attach(a, "broken"), /engine down/);
    index.detach(a, "broken");
    await index.attach(a, "fine");
    index.detach(a, "fine");
    await tick();
    // The broken watch is never unwatched; the fine one is, and its failure is swallowed.
    assert.equal(unwatched, 1);
  });
});
