import assert from "node:assert/strict";
import { describe } from "../support/fixtures.js";
import { START_TIMEOUT_MS, test } from "../support/cli-chat.js";

// End-to-end tests of `seqcast chat`: real CLI processes, driven through
// piped stdin, asserted on the exact lines they print. How the chat rides out
// a lost or unreachable broker is in cli-chat-reconnect.test.ts.

describe("seqcast chat (CLI end to end)", { timeout: 120_000 }, () => {
  test("two users chat in a room: joins, messages once each, presence, /who, /history", async ({ start }) => {
    const [alice, bob] = await Promise.all([start("alice"), start("bob", ["--device", "phone"])]);
    await alice.command("/join general", "* joined general");
    const fromBobJoin = alice.mark();
    await bob.command("/join general", "* joined general");
    await alice.waitFor("* bob joined general", { from: fromBobJoin });

    alice.send("hello bob");
    await bob.waitFor("[1] alice: hello bob");
    await alice.waitFor("[1] alice: hello bob"); // own messages come back on the stream…
    bob.send("hi alice");
    await alice.waitFor("[2] bob: hi alice");
    await bob.waitFor("[2] bob: hi alice");
    assert.equal(alice.count("[1] alice: hello bob"), 1, "…and are shown once");
    assert.equal(bob.count("[1] alice: hello bob"), 1);
    assert.equal(bob.count("[2] bob: hi alice"), 1);
    // Nobody is told about their own session's join.
    assert.equal(alice.count("* alice joined general"), 0);
    assert.equal(bob.count("* bob joined general"), 0);

    await alice.command("/who general", "* general: alice (cli), bob (phone)");
    // A second session of bob's: /who counts sessions per user.
    const bob2 = await start("bob", ["--device", "laptop", "--room", "general"]);
    await bob2.waitFor("* joined general");
    await alice.command("/who", "* general: alice (cli), bob (2 sessions)");

    // A third user, in no room: /history shows the room's messages in order, as `[room#seq]`.
    const carol = await start("carol");
    const from = carol.mark();
    carol.send("/history general");
    await carol.waitFor("[general#2] bob: hi alice", { from });
    assert.deepEqual(carol.lines().slice(from), [
      "* general: last 2 messages",
      "[general#1] alice: hello bob",
      "[general#2] bob: hi alice",
    ]);
    await carol.command("/history general 1", "* general: last 1 message (older ones exist)");
    await carol.waitFor("[general#2] bob: hi alice", { from: carol.mark() - 1 });
    // Without a current room a message has nowhere to go.
    await carol.command("anyone?", "! join a room first: /join <room>");
  });

  test("shows other joined rooms as [room#seq] and switches rooms with /room", async ({ start }) => {
    const [dora, eve] = await Promise.all([start("dora"), start("eve")]);
    await dora.command("/join lobby", "* joined lobby");
    await dora.command("/join side", "* joined side");
    await dora.command("/rooms", "* rooms: lobby, side (current)");
    await eve.command("/join lobby", "* joined lobby");
    eve.send("in the lobby");
    await dora.waitFor("[lobby#1] eve: in the lobby");
    await dora.command("/room lobby", "* current room: lobby");
    eve.send("again");
    await dora.waitFor("[2] eve: again");
    dora.send("from dora");
    await eve.waitFor("[3] dora: from dora");
    await dora.waitFor("[3] dora: from dora");
    // Leaving the current room makes another joined room current.
    await dora.command("/leave", "* left lobby");
    await dora.waitFor("* current room: side");
    await dora.command("/room lobby", "! not in lobby: /join lobby first");
  });

  test("prints errors as `! code: message` and keeps running", async ({ start }) => {
    const frank = await start("frank");
    await frank.command("/join bad!room", /^! invalid_argument: room: "bad!room" is not a room name/);
    // The same mistake caught by the broker (GetPresence / GetHistory validate the room).
    await frank.command("/who no/such", /^! invalid_argument: room: "no\/such" is not a room name/);
    await frank.command("/history no/such", /^! invalid_argument: room: "no\/such" is not a room name/);
    await frank.command("/history lobby 5000", /^! invalid_argument: limit: 5000, at most 1000 allowed$/);
    await frank.command("/frobnicate", "! unknown command /frobnicate (try /help)");
    await frank.command("/join", "! usage: /join <room>");
    await frank.command("/leave nowhere", "! not in nowhere");
    // Still alive and well.
    await frank.command("/rooms", "* no rooms joined: /join <room>");
    await frank.command("/join fine", "* joined fine");
    await frank.command("/help", "  /join <room>          join a room and make it the current room");
    assert.equal(frank.child.exitCode, null);
  });

  test("/leave announces the leave to others; /quit and end of input exit 0", async ({ start }) => {
    const [gina, hank] = await Promise.all([start("gina"), start("hank")]);
    await gina.command("/join quitters", "* joined quitters");
    const from = gina.mark();
    await hank.command("/join quitters", "* joined quitters");
    await gina.waitFor("* hank joined quitters", { from });
    await hank.command("/leave quitters", "* left quitters");
    await hank.waitFor("* no current room");
    await gina.waitFor("* hank left quitters", { from });
    hank.send("/quit");
    assert.equal(await hank.exitCode(), 0);

    const from2 = gina.mark();
    const ivan = await start("ivan", ["--room", "quitters"]);
    await ivan.waitFor("* joined quitters");
    await gina.waitFor("* ivan joined quitters", { from: from2 });
    ivan.child.stdin.end(); // EOF = /quit: the session ends cleanly, others see the leave
    assert.equal(await ivan.exitCode(), 0);
    await gina.waitFor("* ivan left quitters", { from: from2 });
  });

  test("runs a piped script to the end: lines after /join wait for it, EOF quits", async ({ cli, broker }) => {
    const script = cli("judy", ["--user", "judy", "--url", broker.url, "--room", "scripted"]);
    script.child.stdin.end("first\n/join scripted.b\nsecond\n/history scripted\n");
    assert.equal(await script.exitCode(START_TIMEOUT_MS), 0, script.stdout + script.stderr);
    const lines = script.lines();
    assert.equal(lines[0], `* seqcast chat: judy at ${broker.url} (/help for commands)`);
    assert.ok(lines.includes("* joined scripted"), script.stdout);
    assert.ok(lines.includes("* joined scripted.b"), script.stdout);
    // History of a joined room that is not current: [room#seq].
    const at = lines.indexOf("* scripted: last 1 message");
    assert.ok(at > 0, script.stdout);
    assert.equal(lines[at + 1], "[scripted#1] judy: first");
    assert.ok(!lines.some((line) => line.startsWith("!")), script.stdout);
  });

  test("a CLI killed with SIGKILL shows up as a leave at the others", async ({ start }) => {
    const kate = await start("kate", ["--room", "crash"]);
    await kate.waitFor("* joined crash");
    const from = kate.mark();
    const leo = await start("leo", ["--room", "crash"]);
    await leo.waitFor("* joined crash");
    await kate.waitFor("* leo joined crash", { from });
    leo.kill();
    assert.equal((await leo.exited).signal, "SIGKILL");
    await kate.waitFor("* leo left crash", { from });
    await kate.command("/who", "* crash: kate (cli)");
  });

  test("rejects command-line mistakes with exit code 2", async ({ cli }) => {
    const cases: [string[], RegExp][] = [
      [[], /--user NAME is required/],
      [["--user", "no spaces"], /--user: "no spaces" is not a user name/],
      [["--user", "x", "--bogus"], /--bogus/],
      [["--user", "x", "--url", "ftp://host"], /--url: "ftp:\/\/host" must start with http:\/\/ or https:\/\//],
      [["--user", "x", "--room", "a b"], /--room: "a b" is not a room name/],
      [["--user", "x", "--protocol", "carrier-pigeon"], /--protocol: "carrier-pigeon" is not one of grpc, connect, grpc-web/],
    ];
    await Promise.all(
      cases.map(async ([args, message]) => {
        const usage = cli(`usage ${args.join(" ")}`, args);
        assert.equal(await usage.exitCode(START_TIMEOUT_MS), 2, args.join(" "));
        assert.match(usage.stderr, message);
        assert.doesNotMatch(usage.stderr, /\n\s+at /, "no stack trace");
      }),
    );
  });
  test("private messages: @user and /dm reach every device of the recipient, marked, and nobody else", async ({ start }) => {
    const [dana, eli1, eli2, fay] = await Promise.all([
      start("dana"),
      start("eli", ["--device", "phone"]),
      start("eli", ["--device", "laptop"]),
      start("fay"),
    ]);
    await dana.command("@eli lunch at noon?", "[dm → eli] lunch at noon?");
    await eli1.waitFor("[dm] dana: lunch at noon?");
    await eli2.waitFor("[dm] dana: lunch at noon?");
    await eli1.command("/dm dana yes", "[dm → dana] yes");
    await dana.waitFor("[dm] eli: yes");
    await fay.command("/history @eli", /^! permission_denied: .*inbox/);
    assert.ok(!fay.stdout.includes("lunch"), "nothing of Eli's inbox reached Fay");
  });

  test("/reply answers a message of the current room, shown as (re #N) after it; a message whose dependency never arrives is marked", async ({ start, client }) => {
    const [ann, bob] = await Promise.all([start("ann"), start("bob")]);
    await ann.command("/join qa", "* joined qa");
    await bob.command("/join qa", "* joined qa");
    await ann.command("who is on call?", "[1] ann: who is on call?");
    await bob.waitFor("[1] ann: who is on call?");
    await bob.command("/reply 1 me", "[2] bob: (re #1) me");
    await ann.waitFor("[2] bob: (re #1) me");
    await bob.command("/reply 7 nope", "! /reply: qa has no message #7 yet (nothing was sent)");
    // A private message following a message of qa that never comes: shown after the SDK's wait (5 s), marked.
    const { epoch } = await client("dana").history("qa");
    await client("dana").publish("@ann", "did you see it?", { replyTo: { room: "qa", epoch, sequence: 99n } });
    await ann.waitFor("[dm] dana: did you see it? (shown before qa#99, which did not arrive in time)", { timeoutMs: 15_000 });
    // One that waited and got what it follows looks like any other line.
    const sent = await client("dana").publish("qa", "ok");
    await client("dana").publish("@ann", "see qa", { replyTo: { room: "qa", epoch, sequence: sent.sequence } });
    await ann.waitFor("[dm] dana: see qa");
    assert.ok(ann.lines().indexOf("[3] dana: ok") < ann.lines().indexOf("[dm] dana: see qa"));
  });

  test("/clear_history needs the admin role; members see the reset", async ({ start }) => {
    const [gus, root] = await Promise.all([start("gus"), start("root", ["--admin"])]);
    await gus.command("/join wiped", "* joined wiped");
    gus.send("old news");
    await gus.waitFor("[1] gus: old news");
    await gus.command("/clear_history wiped", /^! permission_denied: .*admin/);
    await root.command("/clear_history wiped", "* wiped: history cleared");
    await gus.waitFor("! wiped: history was cleared; earlier messages are gone");
    gus.send("fresh");
    await gus.waitFor("[1] gus: fresh");
  });
  test("/away and /back change presence, shown to others and in /who", async ({ start }) => {
    const [hal, ivy] = await Promise.all([start("hal", ["--room", "statuses"]), start("ivy", ["--room", "statuses"])]);
    await hal.waitFor("* joined statuses");
    await ivy.waitFor("* joined statuses");
    await hal.command("/away", "* you are away");
    await ivy.waitFor("* hal is away in statuses");
    await ivy.command("/who statuses", /^\* statuses: hal \(cli, away\), ivy \(cli\)$/);
    await hal.command("/back", "* you are back");
    await ivy.waitFor("* hal is online in statuses");
    // Once: /back is not also counted as activity that brings hal back (which sent a second update).
    await hal.command("/back", "* you are back");
    await ivy.command("/who statuses", /^\* statuses: hal \(cli\), ivy \(cli\)$/);
    assert.equal(ivy.count("* hal is online in statuses"), 1);
    assert.equal(hal.count("* you are back"), 2);
  });

  test("joining a room shows its last messages and who is already there", async ({ start, client }) => {
    const [ann, bob] = await Promise.all([start("ann", ["--room", "lobby"]), start("bob", ["--room", "lobby", "--device", "phone"])]);
    await Promise.all([ann.waitFor("* joined lobby"), bob.waitFor("* joined lobby")]);
    for (let i = 1; i <= 12; i++) await client("ann").publish("lobby", `message ${i}`);
    const cid = await start("cid");
    const from = cid.mark();
    await cid.command("/join lobby", "* joined lobby");
    await cid.waitFor("[12] ann: message 12", { from });
    assert.deepEqual(cid.lines().slice(from), [
      "* joined lobby",
      "* here: ann (cli), bob (phone)",
      ...Array.from({ length: 10 }, (_, i) => `[${i + 3}] ann: message ${i + 3}`),
    ]);
    // Every message line carries the local time.
    const stamped = cid.timed().slice(from + 2);
    assert.ok(stamped.every((line) => /^\d{2}:\d{2} \[\d+\] ann: /.test(line)), stamped.join("\n"));
    // A room of one: says so.
    await cid.command("/join empty", "* joined empty");
    await cid.waitFor("* nobody else is in empty");
  });

  test("private messages sent while the user was offline arrive at the next start, once", async ({ start, cli, broker }) => {
    const first = await start("dot", ["--device", "desk"]);
    first.send("/quit");
    assert.equal(await first.exitCode(), 0);
    const eve = await start("eve");
    await eve.command("@dot are you there?", "[dm → dot] are you there?");
    await eve.command("@dot call me", "[dm → dot] call me");
    const again = cli("dot again", ["--user", "dot", "--url", broker.url, "--device", "desk"]);
    await again.waitFor("[dm] eve: call me", { timeoutMs: START_TIMEOUT_MS });
    assert.deepEqual(again.lines().filter((line) => line.startsWith("[dm]")), ["[dm] eve: are you there?", "[dm] eve: call me"]);
    again.send("/quit");
    assert.equal(await again.exitCode(), 0);
    // Delivered once: the next start has nothing new.
    const third = cli("dot third", ["--user", "dot", "--url", broker.url, "--device", "desk"]);
    await third.waitFor("* connected", { timeoutMs: START_TIMEOUT_MS });
    third.send("/rooms");
    await third.waitFor("* no rooms joined: /join <room>");
    assert.deepEqual(third.lines().filter((line) => line.startsWith("[dm]")), []);
  });
});
