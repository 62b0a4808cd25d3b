import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { describe, it } from "vitest";
import { PresenceEntrySchema, PresenceState } from "../../gen/es/seqcast/v1/types_pb.js";
import { compose } from "../../src/web/compose.js";
import { presentUsers, resetNote, shortTime, tokenSubject } from "../../src/web/format.js";

// The page's pure parts: what a typed line means, and how things are worded.

describe("the chat page's message box", () => {
  it("sends plain lines to the room and @name lines privately", () => {
    assert.deepEqual(compose("  hello  "), { kind: "message", text: "hello" });
    assert.deepEqual(compose("@bob see you at 5"), { kind: "direct", user: "bob", text: "see you at 5" });
    assert.deepEqual(compose("//join is a word"), { kind: "message", text: "/join is a word" });
    assert.deepEqual(compose("   "), { kind: "nothing" });
  });

  it("treats @name alone and bad names as mistakes, never as public messages", () => {
    assert.deepEqual(compose("@bob"), { kind: "error", message: 'Write the message after @bob, e.g. "@bob hello".' });
    assert.equal(compose("@ hi").kind, "error");
    assert.match((compose("@b!b hi") as { message: string }).message, /not a user name/);
  });

  it("knows /join, /leave, /away and /back", () => {
    assert.deepEqual(compose("/join sports.football"), { kind: "join", room: "sports.football" });
    assert.match((compose("/join bad room") as { message: string }).message, /Usage/);
    assert.match((compose("/join bad!") as { message: string }).message, /not a room name/);
    assert.deepEqual([compose("/leave").kind, compose("/away").kind, compose("/back").kind], ["leave", "away", "back"]);
    assert.match((compose("/frob") as { message: string }).message, /Unknown command \/frob/);
  });
});

describe("the chat page's words", () => {
  it("shows local times, with the day when it is not today", () => {
    const now = new Date(2026, 2, 3, 18, 0);
    assert.equal(shortTime(new Date(2026, 2, 3, 9, 5), now), "09:05");
    assert.match(shortTime(new Date(2026, 2, 1, 23, 59), now), /1.*23:59$/);
    assert.match(shortTime(new Date(2025, 11, 31, 8, 0), now), /2025.*08:00$/);
  });

  it("words resets for readers", () => {
    assert.equal(resetNote("lost", 3n), "3 messages lost: the broker no longer had them.");
    assert.equal(resetNote("lost", 1n), "1 message lost: the broker no longer had it.");
    assert.match(resetNote("epoch_changed", 0n), /history was cleared/);
  });

  it("lists users once, away only when every session is", () => {
    const entry = (user: string, device: string, state: PresenceState) => create(PresenceEntrySchema, { user, sessionId: `${user}-${device}`, device, state });
    const users = presentUsers([
      entry("bob", "phone", PresenceState.AWAY),
      entry("ann", "", PresenceState.ONLINE),
      entry("bob", "laptop", PresenceState.ONLINE),
      entry("cid", "cli", PresenceState.AWAY),
    ]);
    assert.deepEqual(users, [
      { user: "ann", away: false, devices: [], sessions: 1 },
      { user: "bob", away: false, devices: ["phone", "laptop"], sessions: 2 },
      { user: "cid", away: true, devices: ["cli"], sessions: 1 },
    ]);
  });

  it("reads who a token is for, and rejects what is not a token", () => {
    const payload = Buffer.from(JSON.stringify({ sub: "ann" })).toString("base64url");
    assert.equal(tokenSubject(`h.${payload}.s`), "ann");
    assert.equal(tokenSubject("not a token"), undefined);
    assert.equal(tokenSubject("a.%%%.c"), undefined);
  });
});
