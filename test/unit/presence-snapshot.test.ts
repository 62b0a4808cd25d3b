import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { changesAfterSnapshot } from "../../src/broker/presence-snapshot.js";
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
