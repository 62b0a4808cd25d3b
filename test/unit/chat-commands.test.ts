import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { parseChatLine, type ChatCommand } from "../../src/cli/chat-commands.js";
import { COMMANDS } from "../../src/cli/chat-options.js";

describe("seqcast chat's input lines", () => {
  it("reads every command /help lists, with its arguments", () => {
    const cases: Array<[string, ChatCommand]> = [
      ["/join general", { kind: "join", room: "general" }],
      ["/leave", { kind: "leave", room: undefined }],
      ["/leave random", { kind: "leave", room: "random" }],
      ["/room random", { kind: "room", room: "random" }],
      ["/rooms", { kind: "rooms" }],
      ["/history", { kind: "history", args: [] }],
      ["/history general 20", { kind: "history", args: ["general", "20"] }],
      ["/who", { kind: "who", room: undefined }],
      ["/who general", { kind: "who", room: "general" }],
      ["/reply 42 see above", { kind: "reply", sequence: 42n, text: "see above" }],
      ["/reply #7 yes", { kind: "reply", sequence: 7n, text: "yes" }],
      ["/dm carol see Alice's question", { kind: "direct", user: "carol", text: "see Alice's question" }],
      ["@carol hi there", { kind: "direct", user: "carol", text: "hi there" }],
      ["/away", { kind: "away" }],
      ["/back", { kind: "back" }],
      ["/clear_history general", { kind: "clear_history", room: "general" }],
      ["/help", { kind: "help" }],
      ["/quit", { kind: "quit" }],
      ["/exit", { kind: "quit" }],
    ];
    for (const [line, expected] of cases) assert.deepEqual(parseChatLine(line), expected, line);
    // Every command the help text names is one the parser knows.
    const listed = [...COMMANDS.matchAll(/(?:^\s+|, )\/(\w+)/gm)].map((m) => m[1]!);
    assert.ok(listed.length >= 12, `found ${listed.join(" ")}`);
    for (const name of listed) {
      const command = parseChatLine(`/${name} x y z`);
      assert.ok(!(command.kind === "usage" && command.message.includes("unknown command")), `/${name} is listed but unknown`);
    }
  });

  it("sends text as it is: plain lines, // for a leading slash, surrounding spaces kept; a trailing CR dropped", () => {
    assert.deepEqual(parseChatLine("hello world"), { kind: "say", text: "hello world" });
    assert.deepEqual(parseChatLine("  indented "), { kind: "say", text: "  indented " });
    assert.deepEqual(parseChatLine("//join is a command"), { kind: "say", text: "/join is a command" });
    assert.deepEqual(parseChatLine("hello\r"), { kind: "say", text: "hello" });
    assert.deepEqual(parseChatLine("/join general\r"), { kind: "join", room: "general" });
    assert.deepEqual(parseChatLine(""), { kind: "none" });
    assert.deepEqual(parseChatLine("   \r"), { kind: "none" });
  });

  it("answers a malformed command with its usage, and sends nothing", () => {
    const cases: Array<[string, string]> = [
      ["/join", "! usage: /join <room>"],
      ["/join a b", "! usage: /join <room>"],
      ["/leave a b", "! usage: /leave [room]"],
      ["/room", "! usage: /room <room>"],
      ["/who a b", "! usage: /who [room]"],
      ["/reply", "! usage: /reply <seq> <text> (answers message <seq> of the current room)"],
      ["/reply x text", "! usage: /reply <seq> <text> (answers message <seq> of the current room)"],
      ["/reply 3", "! usage: /reply <seq> <text> (answers message <seq> of the current room)"],
      ["/dm carol", "! usage: /dm <user> <text>"],
      ["@carol", "! usage: @user <text> (a private message; nothing was sent)"],
      ["/clear_history", "! usage: /clear_history <room>"],
      ["/frobnicate now", "! unknown command /frobnicate (try /help)"],
      ["/\u001b[2Jx", "! unknown command /\\u001b[2Jx (try /help)"],
    ];
    for (const [line, message] of cases) assert.deepEqual(parseChatLine(line), { kind: "usage", message }, line);
  });
});
