import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { describe, exited, startCuttableProxy, test as base, TEST_SECRET, waitUntil } from "../support/fixtures.js";

// End-to-end tests of `seqcast chat`: real CLI processes, driven through
// piped stdin, asserted on the exact lines they print.

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const LINE_TIMEOUT_MS = 10_000;
/** A fresh process compiles the sources through tsx first: give it longer for its first line. */
const START_TIMEOUT_MS = 30_000;
/** The local time that starts every message line: `14:05 ` today, `2026-03-01 14:05 ` before. */
const TIME = /^(\d{4}-\d{2}-\d{2} )?\d{2}:\d{2} (?=\[)/;

/** One `seqcast chat` process, with everything it printed kept for assertions. */
class Cli {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = "";
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly name: string, args: string[]) {
    // The chat mints its own token with the broker's secret, as on the broker's machine.
    const env: NodeJS.ProcessEnv = { ...process.env, SEQCAST_JWT_SECRET: TEST_SECRET };
    delete env.SEQCAST_URL; // every test passes --url
    this.child = spawn(process.execPath, ["bin/seqcast.js", "chat", ...args], {
      cwd: ROOT,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child.stdout.setEncoding("utf8").on("data", (chunk: string) => (this.stdout += chunk));
    this.child.stderr.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve({ code, signal })));
    this.child.stdin.on("error", () => {}); // writing to a process we killed on purpose
  }

  /** Complete lines printed so far, without the local time that starts a message line (see `timed`). */
  lines(): string[] {
    return this.timed().map((line) => line.replace(TIME, ""));
  }

  /** Complete lines printed so far, as printed. */
  timed(): string[] {
    const lines = this.stdout.split("\n");
    lines.pop(); // a partial last line, or "" after the final newline
    return lines;
  }

  /** Marks the current end of the output, for waiting on lines printed after it. */
  mark(): number {
    return this.lines().length;
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** Resolves with the first line matching `pattern` (an exact string or a regex), from line index `from` on. */
  async waitFor(pattern: string | RegExp, { from = 0, timeoutMs = LINE_TIMEOUT_MS } = {}): Promise<string> {
    const matches = (line: string) => (typeof pattern === "string" ? line === pattern : pattern.test(line));
    const find = () => this.lines().slice(from).find(matches);
    await waitUntil(
      () => find() !== undefined || this.child.exitCode !== null,
      () => `${this.name}: a line matching ${String(pattern)}\n--- stdout ---\n${this.stdout}--- stderr ---\n${this.stderr}`,
      timeoutMs,
    );
    const found = find();
    if (found === undefined)
      throw new Error(`${this.name}: exited with ${this.child.exitCode} before printing a line matching ${String(pattern)}\n${this.stdout}${this.stderr}`);
    return found;
  }

  /** Sends a command and waits for the line that answers it. */
  async command(line: string, answer: string | RegExp): Promise<string> {
    const from = this.mark();
    this.send(line);
    return this.waitFor(answer, { from });
  }

  count(line: string): number {
    return this.lines().filter((l) => l === line).length;
  }

  async exitCode(timeoutMs = LINE_TIMEOUT_MS): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name}: still running after ${timeoutMs} ms\n${this.stdout}`)), timeoutMs);
    });
    try {
      return (await Promise.race([this.exited, timeout])).code;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

/** CLI processes of the test, killed after it. */
const test = base.extend<{
  /** A CLI process with the given arguments (nothing added). */
  cli: (name: string, args: string[]) => Cli;
  /** `seqcast chat --user NAME --url URL …`, resolved once its session is live. */
  start: (name: string, args?: string[], url?: string) => Promise<Cli>;
}>({
  cli: async ({}, use) => {
    const clis: Cli[] = [];
    await use((name, args) => {
      const cli = new Cli(name, args);
      clis.push(cli);
      return cli;
    });
    for (const cli of clis) cli.kill();
    await Promise.allSettled(clis.map((cli) => cli.exited));
  },
  start: async ({ broker, cli }, use) => {
    await use(async (name, args = [], url = broker.url) => {
      const started = cli(name, ["--user", name, "--url", url, ...args]);
      await started.waitFor("* connected", { timeoutMs: START_TIMEOUT_MS });
      return started;
    });
  },
});

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

  test("reports a lost connection and resumes without losing or doubling messages", async ({ start, broker, cleanup }) => {
    const proxy = await startCuttableProxy(broker.port);
    cleanup(() => proxy.close());
    const mia = await start("mia", ["--room", "flaky"], proxy.url);
    await mia.waitFor("* joined flaky");
    const ned = await start("ned", ["--room", "flaky"]);
    await ned.waitFor("* joined flaky");
    ned.send("one");
    await mia.waitFor("[1] ned: one");

    const from = mia.mark();
    proxy.cut();
    await mia.waitFor(new RegExp(`^\\* lost the connection to ${proxy.url} \\(`), { from });
    ned.send("two"); // probably sent while mia is away; the resume replays it
    await mia.waitFor("* connected", { from });
    ned.send("three");
    await mia.waitFor("[3] ned: three", { from });
    await mia.waitFor("[2] ned: two", { from });
    assert.deepEqual(
      mia.lines().filter((line) => line.startsWith("[")),
      ["[1] ned: one", "[2] ned: two", "[3] ned: three"],
    );
    // The old session's leave is not news to mia herself.
    assert.equal(mia.count("* mia left flaky"), 0);
    mia.send("back");
    await ned.waitFor("[4] mia: back");
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

  test("says when the broker cannot be reached, with the URL; lines typed meanwhile are pending until acknowledged", async ({ start, cli, broker, cleanup }) => {
    // Nothing listens here.
    const nowhere = cli("nowhere", ["--user", "nemo", "--url", "http://127.0.0.1:9"]);
    await nowhere.waitFor("! cannot reach the broker at http://127.0.0.1:9 (connection refused: is the broker running?); retrying (is it running there? pass --url if not)", {
      timeoutMs: START_TIMEOUT_MS,
    });
    nowhere.send("/quit");
    assert.equal(await nowhere.exitCode(), 0);

    const proxy = await startCuttableProxy(broker.port);
    cleanup(() => proxy.close());
    const pia = await start("pia", ["--room", "outage"], proxy.url);
    await pia.waitFor("* joined outage");
    const from = pia.mark();
    proxy.blocked = true;
    proxy.cut();
    await pia.waitFor(/^\* lost the connection to .*; reconnecting, lines you type are sent once it is back$/, { from });
    pia.send("typed in the dark");
    await pia.waitFor("~ pending: typed in the dark (not acknowledged by the broker yet)", { from });
    pia.send("@quinn also this");
    await pia.waitFor("~ pending: [dm → quinn] also this", { from });
    proxy.blocked = false;
    await pia.waitFor("[1] pia: typed in the dark", { from, timeoutMs: 20_000 });
    await pia.waitFor("[dm → quinn] also this", { from });
    assert.equal(pia.count("[1] pia: typed in the dark"), 1);
  });

  test("a graceful broker restart shows nobody as gone, and everyone's /who agrees afterwards", async ({ cli, serve }) => {
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const first = await serve(["--port", String(port)]);
    const args = (user: string) => ["--user", user, "--url", first.url, "--room", "team"];
    const users = ["rae", "sam", "tia"].map((user) => cli(user, args(user)));
    await Promise.all(users.map((u) => u.waitFor("* joined team", { timeoutMs: START_TIMEOUT_MS })));
    const expected = "* team: rae (cli), sam (cli), tia (cli)";
    // rae's list is its own view of the room: the last join may reach it just after its /who.
    await waitUntil(
      async () => (await users[0]!.command("/who", /^\* team: /)) === expected,
      () => `rae's /who to list everyone: ${users[0]!.lines().slice(-3).join(" | ")}`,
      20_000,
    );
    const marks = users.map((u) => u.mark());
    first.child.kill("SIGTERM");
    assert.equal(await exited(first.child), 0);
    await serve(["--port", String(port), "--data-dir", first.dataDir]);
    await Promise.all(users.map((u, i) => u.waitFor("* connected", { from: marks[i], timeoutMs: 20_000 })));
    // Everyone converges on the same list (each client rejoins at its own pace).
    for (const u of users)
      await waitUntil(
        async () => (await u.command("/who", /^\* team: /)) === expected && u.lines().at(-1) === expected,
        () => `${u.name}'s /who to list everyone: ${u.lines().slice(-3).join(" | ")}`,
        20_000,
      );
    users.forEach((u, i) => {
      const after = u.lines().slice(marks[i]);
      assert.deepEqual(after.filter((line) => / left team$/.test(line)), [], `${u.name} was told nobody left`);
    });
  });
});
