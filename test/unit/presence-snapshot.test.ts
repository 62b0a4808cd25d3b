import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { changesAfterSnapshot } from "../../src/broker/presence-snapshot.js";
import { PresenceGrace } from "../../src/broker/presence-grace.js";
import type { Clock } from "../../src/broker/clock.js";
import type { PresenceEntry, RoomEvent } from "../../src/engine/engine.js";

// Which parked presence events follow a joiner's snapshot (subscribed.present).

const entry = (sessionId: string, state: "online" | "away" = "online"): PresenceEntry => ({
  user: sessionId.replace(/\d+$/, ""),
  sessionId,
  device: "",
  state,
  joinedAtMs: 1,
  sinceMs: state === "online" ? 1 : 2,
  lastActiveMs: 1,
});
const join = (id: string): RoomEvent => ({ type: "presence", kind: "join", entry: entry(id) });
const away = (id: string): RoomEvent => ({ type: "presence", kind: "update", entry: entry(id, "away") });
const leave = (id: string): RoomEvent => ({ type: "presence", kind: "leave", entry: entry(id) });
const message: RoomEvent = {
  type: "message",
  message: { id: "m", room: "r", epoch: "e", sequence: 1n, sender: "x", content: "hi", payload: new Uint8Array(), attributes: {}, timeMs: 1, clientMessageId: "" },
};
const names = (events: RoomEvent[]) => events.map((e) => (e.type === "presence" ? `${e.kind}:${e.entry.sessionId}` : e.type));

describe("presence snapshot at join", () => {
  it("drops presence events parked before the list was read, keeps those after it, and every message", () => {
    const pending = [join("ann1"), message, away("ann1"), join("bob1"), leave("ann1")];
    // The list was read after the first three events: it holds ann away.
    assert.deepEqual(names(changesAfterSnapshot(pending, 3, 3, [entry("ann1", "away")])), ["message", "join:bob1", "leave:ann1"]);
  });

  it("forwards events parked while the list was read only when the list does not hold them yet", () => {
    // The list saw ann's update and bob's join but not cid's join nor bob's leave.
    const pending = [away("ann1"), join("bob1"), join("cid1"), leave("bob1"), leave("dan1")];
    const present = [entry("ann1", "away"), entry("bob1")];
    assert.deepEqual(names(changesAfterSnapshot(pending, 0, 5, present)), ["join:cid1", "leave:bob1"]);
    // A join and a leave of one session after the read both go out (the second is judged with the first applied).
    assert.deepEqual(names(changesAfterSnapshot([join("eve1"), leave("eve1")], 0, 2, [])), ["join:eve1", "leave:eve1"]);
  });
});

describe("presence held for a reconnect", () => {
  /** A clock whose timers run when the test says. */
  const manualClock = () => {
    const timers: Array<() => void> = [];
    const clock: Clock = { now: () => 0, setTimeout: (run) => (timers.push(run), () => timers.splice(timers.indexOf(run), 1)), setInterval: () => () => {} };
    return { clock, fire: () => timers.splice(0).forEach((run) => run()) };
  };

  it("is taken over under the session id the client names, keeping the presence id it carried", () => {
    const { clock } = manualClock();
    const grace = new PresenceGrace(1000, async () => true, clock);
    grace.hold("second", "first", "ann", new Set(["r"]));
    assert.equal(grace.takeOver("first", "ann"), undefined, "the id of an earlier session is not the one held");
    assert.equal(grace.takeOver("second", "bob"), undefined, "another user cannot");
    assert.deepEqual(grace.takeOver("second", "ann"), { presenceId: "first", rooms: new Set(["r"]) });
    assert.equal(grace.takeOver("second", "ann"), undefined, "once");
  });

  it("removes the entries when the period ends, even when the engine fails to", async () => {
    const { clock, fire } = manualClock();
    const removed: string[] = [];
    const grace = new PresenceGrace(
      1000,
      async (room, id) => {
        removed.push(`${room}:${id}`);
        throw new Error("engine down");
      },
      clock,
    );
    grace.hold("s1", "p1", "ann", new Set(["r1", "r2"]));
    fire();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(removed, ["r1:p1", "r2:p1"]);
    assert.equal(grace.takeOver("s1", "ann"), undefined);
  });
});
