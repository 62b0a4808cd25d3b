import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { chat } from "../../src/cli/chat.js";
import { main } from "../../src/cli/main.js";
import { serve } from "../../src/cli/serve.js";
import { UsageError } from "../../src/cli/usage-error.js";
import { describe, startCuttableProxy, test, TEST_SECRET, vi, waitUntil } from "../support/fixtures.js";

// The CLI run in this process, on streams instead of a terminal: quick to
// drive through many commands (test/e2e/cli-chat.test.ts runs the real
// processes), and measured by the coverage of `npm test -- --coverage`.

/** `seqcast chat` in this process, fed lines and read back like a terminal. */
class ChatInProcess {
  readonly input = new PassThrough();
  private out = "";
  readonly exit: Promise<number>;

  constructor(readonly name: string, args: string[]) {
    const output = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.out += chunk.toString();
        done();
      },
    });
    this.exit = chat(args, { SEQCAST_JWT_SECRET: TEST_SECRET }, { input: this.input, output });
  }

  /** Lines printed so far, without the local time that starts message lines. */
  lines(): string[] {
    return this.out.split("\n").slice(0, -1).map((l) => l.replace(/^(\d{4}-\d{2}-\d{2} )?\d{2}:\d{2} (?=\[)/, ""));
  }

  mark(): number {
    return this.lines().length;
  }

  async waitFor(pattern: string | RegExp, from = 0, timeoutMs = 10_000): Promise<string> {
    const matches = (l: string) => (typeof pattern === "string" ? l === pattern : pattern.test(l));
    await waitUntil(() => this.lines().slice(from).some(matches), () => `${this.name}: ${String(pattern)} in\n${this.out}`, timeoutMs);
    return this.lines().slice(from).find(matches)!;
  }

  /** Sends a line and waits for the line answering it. */
  async command(line: string, answer: string | RegExp): Promise<string> {
    const from = this.mark();
    this.input.write(`${line}\n`);
    return this.waitFor(answer, from);
  }

  send(line: string): void {
    this.input.write(`${line}\n`);
  }

  /** End of input = /quit. */
  quit(): Promise<number> {
    this.input.end();
    return this.exit;
  }
}

describe("seqcast chat in this process", () => {
  test("rooms, the last messages and who is here at a join, presence news, private messages, history and mistakes", async ({ broker, client }) => {
    const url = broker.url;
    await client("zed").publish("lobby", "before anyone");
    const ann = new ChatInProcess("ann", ["--user", "ann", "--url", url, "--room", "lobby"]);
    await ann.waitFor("* joined lobby");
    await ann.waitFor("[1] zed: before anyone");
    await ann.waitFor("* nobody else is in lobby");
    const bob = new ChatInProcess("bob", ["--user", "bob", "--url", url, "--room", "lobby", "--device", "phone", "--protocol", "connect"]);
    await bob.waitFor("* here: ann (cli)");
    await ann.waitFor("* bob joined lobby");

    await bob.command("hello ann", "[2] bob: hello ann");
    await ann.waitFor("[2] bob: hello ann");
    await bob.command("/away", "* you are away");
    await ann.waitFor("* bob is away in lobby");
    await bob.command("/back", "* you are back");
    await ann.waitFor("* bob is online in lobby");
    await ann.command("@bob psst", "[dm → bob] psst");
    await bob.waitFor("[dm] ann: psst");
    await ann.command("/dm bob again", "[dm → bob] again");
    await ann.command("@bob", "! usage: @user <text> (a private message; nothing was sent)");
    await ann.command("/dm bob", "! usage: /dm <user> <text>");
    await ann.command("/who", "* lobby: ann (cli), bob (phone)");
    await ann.command("/who nowhere", "* nowhere: nobody");
    await ann.command("/history lobby 1", "* lobby: last 1 message (older ones exist)");
    await ann.command("/history lobby x", '! /history: N must be a positive number, not "x"');
    await ann.command("/history empty.room", "* empty.room: no messages");
    await ann.command("/join side", "* joined side");
    await ann.command("/rooms", "* rooms: lobby, side (current)");
    await ann.command("/room lobby", "* current room: lobby");
    await ann.command("/join side", "* current room: side");
    await ann.command("/room nowhere", "! not in nowhere: /join nowhere first");
    await ann.command("/leave side", "* left side");
    await ann.command("/leave side", "! not in side");
    await ann.command("//join is a word here", "[3] ann: /join is a word here");
    await ann.command("/clear_history lobby", /^! permission_denied: /);
    await ann.command("/frobnicate", "! unknown command /frobnicate (try /help)");
    await ann.command("/help", "Commands:");
    for (const usage of ["/join", "/leave a b", "/room", "/who a b", "/history a b c", "/clear_history"])
      await ann.command(usage, /^! usage: /);

    await bob.command("/leave", "* left lobby");
    await bob.waitFor("* no current room");
    await ann.waitFor("* bob left lobby");
    await bob.command("lost words", "! join a room first: /join <room>");
    assert.equal(await bob.quit(), 0);
    assert.equal(await ann.quit(), 0);
  });

  test("an unreachable broker is named with its URL; lines typed meanwhile are pending, and /quit says what was not sent", async ({ broker, cleanup }) => {
    const nowhere = new ChatInProcess("nowhere", ["--user", "nemo", "--url", "http://127.0.0.1:9"]);
    await nowhere.waitFor(/^! cannot reach the broker at http:\/\/127\.0\.0\.1:9 \(connection refused/);
    assert.equal(await nowhere.quit(), 0);

    const proxy = await startCuttableProxy(broker.port);
    cleanup(() => proxy.close());
    const pia = new ChatInProcess("pia", ["--user", "pia", "--url", proxy.url, "--room", "outage"]);
    await pia.waitFor("* joined outage");
    proxy.blocked = true;
    proxy.cut();
    await pia.waitFor(/^\* lost the connection to /);
    await pia.command("in the dark", "~ pending: in the dark (not acknowledged by the broker yet)");
    proxy.blocked = false;
    await pia.waitFor("[1] pia: in the dark", 0, 20_000);
    proxy.blocked = true;
    proxy.cut();
    await pia.waitFor(/^\* lost the connection to /, pia.mark() - 1);
    await pia.command("never sent", "~ pending: never sent (not acknowledged by the broker yet)");
    const from = pia.mark();
    assert.equal(await pia.quit(), 0);
    assert.ok(pia.lines().slice(from).includes(`! 1 message not sent: the broker at ${proxy.url} did not acknowledge it`), pia.lines().join("\n"));
  });

  test("--help prints the options", async () => {
    const help = new ChatInProcess("help", ["--help"]);
    assert.equal(await help.exit, 0);
    assert.match(help.lines().join("\n"), /--url URL/);
  });
});

describe("seqcast serve and main in this process: expected errors", () => {
  test("refuse a port in use, an unusable data dir and dev login without the secret, each with one line", async ({ broker }) => {
    const dir = mkdtempSync(join(tmpdir(), "seqcast-cli-"));
    const file = join(dir, "file");
    writeFileSync(file, "");
    const pem = join(dir, "public.pem");
    writeFileSync(pem, generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }));
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [["--port", String(broker.port), "--engine", "memory"], { SEQCAST_JWT_SECRET: "s" }, /^port \d+ is in use; pick another with --port N$/],
      [["--port", "0", "--data-dir", file], {}, /^cannot use the data directory .*: it is a file, not a directory; pick another with --data-dir DIR$/],
      [["--port", "0", "--engine", "memory", "--dev-login", "--jwt-public-key", pem], {}, /^--dev-login needs the HS256 secret/],
      [["--port", "0", "--engine", "memory", "--host", "203.0.113.7"], { SEQCAST_JWT_SECRET: "s" }, /^cannot listen on 203\.0\.113\.7: no such address on this machine; pick another with --host H$/],
    ];
    for (const [args, env, message] of cases)
      await assert.rejects(serve(args, env), (error: unknown) => error instanceof UsageError && message.test(error.message));
  });

  test("main: --version, help, unknown commands and usage errors", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      assert.equal(await main(["--version"]), 0);
      assert.match(String(log.mock.calls.at(-1)?.[0]), /^seqcast \d+\.\d+\.\d+$/);
      assert.equal(await main(["help"]), 0);
      assert.match(String(log.mock.calls.at(-1)?.[0]), /Usage:/);
      assert.equal(await main(["frobnicate"]), 2);
      assert.match(String(error.mock.calls.at(-1)?.[0]), /^seqcast: unknown command "frobnicate"/);
      assert.equal(await main(["serve", "--bogus"]), 2);
      assert.equal(error.mock.calls.at(-1)?.[0], "seqcast serve: unknown option --bogus; see 'seqcast serve --help'");
      assert.equal(await main(["serve", "--help"]), 0);
      assert.equal(await main(["token", "--help"]), 0);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  });
});
