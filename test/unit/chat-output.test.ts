import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConnectError, Code } from "@connectrpc/connect";
import { describe, it } from "vitest";
import { MessageSchema, PresenceEntrySchema, PresenceState } from "../../gen/es/seqcast/v1/types_pb.js";
import { clock, messageLine, Paint, unreachableReason } from "../../src/cli/chat-format.js";
import { PresenceNotices } from "../../src/cli/chat-presence.js";
import { inboxSubscriber } from "../../src/cli/chat-options.js";

// What `seqcast chat` prints: message lines with local times, colours only
// where they belong, and presence as news about users.

const at = new Date(2026, 2, 3, 14, 5);
const message = (sequence: number, sender = "bob", content = "hi") =>
  create(MessageSchema, { room: "general", sequence: BigInt(sequence), sender, content, time: timestampFromDate(at) });

describe("chat lines", () => {
  it("start with the local time, with the date on another day", () => {
    assert.equal(clock(at, new Date(2026, 2, 3, 23, 0)), "14:05");
    assert.equal(clock(at, new Date(2026, 2, 4, 9, 0)), "2026-03-03 14:05");
    const plain = new Paint(false);
    assert.equal(messageLine(message(12), "current", plain, at), "14:05 [12] bob: hi");
    assert.equal(messageLine(message(3), "other", plain, at), "14:05 [general#3] bob: hi");
    assert.equal(messageLine(message(3), "dm", plain, at), "14:05 [dm] bob: hi");
    assert.equal(messageLine(message(4, "eve", "a\u001b[2Jb"), "current", plain, at), "14:05 [4] eve: a\\u001b[2Jb");
    const reply = create(MessageSchema, { room: "general", sequence: 5n, sender: "bob", content: "hi", time: timestampFromDate(at), dependencies: [{ room: "general", epoch: "e", sequence: 2n }, { room: "news", epoch: "e", sequence: 9n }] });
    assert.equal(messageLine(reply, "current", plain, at), "14:05 [5] bob: (re #2) hi");
    assert.equal(
      messageLine(reply, "current", plain, at, [{ room: "news", sequence: 9n }]),
      "14:05 [5] bob: (re #2) hi (shown before news#9, which did not arrive in time)",
    );
  });

  it("are coloured on a terminal only, and never with NO_COLOR", () => {
    assert.equal(Paint.for({ isTTY: true }, {}).enabled, true);
    assert.equal(Paint.for({ isTTY: true }, { NO_COLOR: "1" }).enabled, false);
    assert.equal(Paint.for({ isTTY: false }, {}).enabled, false);
    const paint = new Paint(true);
    const line = messageLine(message(1), "current", paint, at);
    assert.match(line, /\x1b\[2m14:05\x1b\[0m/);
    assert.equal(paint.user("bob"), paint.user("bob"), "one colour per user");
    assert.equal(paint.line("! broken"), "\x1b[31m! broken\x1b[0m");
    assert.equal(paint.line("~ pending: x"), "\x1b[33m~ pending: x\x1b[0m");
    assert.equal(paint.line("* news"), "\x1b[36m* news\x1b[0m");
    assert.equal(paint.line("plain"), "plain");
  });

  it("say why the broker cannot be reached in words", () => {
    const error = (text: string) => new ConnectError(text, Code.Unavailable);
    assert.equal(unreachableReason(error("connect ECONNREFUSED 127.0.0.1:8080"), ""), "connection refused: is the broker running?");
    assert.equal(unreachableReason(error("broker is shutting down; reconnect"), ""), "the broker is restarting");
    assert.equal(unreachableReason(error("getaddrinfo ENOTFOUND nowhere"), ""), "no such host");
    assert.equal(unreachableReason(undefined, "the broker ended the stream"), "the connection was cut");
    assert.equal(unreachableReason(error("something else"), ""), "something else");
  });

  it("name one durable inbox subscriber per device", () => {
    assert.equal(inboxSubscriber("cli"), "cli-cli");
    assert.equal(inboxSubscriber("Ann's phone"), "cli-Ann_s_phone");
    assert.equal(inboxSubscriber("x".repeat(100)).length, 64);
  });
});

describe("presence news", () => {
  const entry = (user: string, session: string, state = PresenceState.ONLINE) => create(PresenceEntrySchema, { user, sessionId: session, device: "cli", state });
  const ann = entry("ann", "a1");
  const bob = entry("bob", "b1");
  const bob2 = entry("bob", "b2");

  it("says who is here at a join, then users (not sessions) coming, going, away and back", () => {
    const news = new PresenceNotices("me");
    assert.equal(news.subscribed("r", [entry("me", "m1")]), "* nobody else is in r");
    const other = new PresenceNotices("me");
    assert.equal(other.subscribed("r", [ann, entry("me", "m1")]), "* here: ann (cli)");
    assert.equal(news.changed("r", "join", bob, [bob]), "* bob joined r");
    assert.equal(news.changed("r", "join", bob2, [bob, bob2]), undefined, "a second device is no news");
    assert.equal(news.changed("r", "join", entry("me", "m2"), []), undefined, "nor are we");
    assert.equal(news.changed("r", "leave", bob, [bob2]), undefined, "bob is still here");
    const away = entry("bob", "b2", PresenceState.AWAY);
    assert.equal(news.changed("r", "update", away, [away]), "* bob is away in r");
    assert.equal(news.changed("r", "update", away, [away]), undefined, "said already");
    assert.equal(news.changed("r", "leave", away, []), "* bob left r");
    assert.equal(news.changed("r", "leave", away, []), undefined);
    assert.equal(news.changed("elsewhere", "join", bob, [bob]), undefined, "a room not joined");
  });

  it("after our reconnect, lets users come back silently and reports only those who do not", () => {
    const news = new PresenceNotices("me");
    news.subscribed("r", [ann, bob]);
    // The restarted broker knows nobody yet: no one is announced as gone.
    assert.equal(news.subscribed("r", []), undefined);
    assert.equal(news.changed("r", "join", ann, [ann]), undefined, "ann is back: no news");
    assert.deepEqual(news.expireReturning("r", [ann]), ["* bob left r"]);
    assert.equal(news.changed("r", "join", bob, [ann, bob]), "* bob joined r", "a later return is news again");
    news.forget("r");
    assert.deepEqual(news.expireReturning("r", []), []);
  });
});
