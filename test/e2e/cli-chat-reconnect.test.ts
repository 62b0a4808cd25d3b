import assert from "node:assert/strict";
import net from "node:net";
import { describe, exited, startCuttableProxy, waitUntil } from "../support/fixtures.js";
import { START_TIMEOUT_MS, test } from "../support/cli-chat.js";

// `seqcast chat` when its connection to the broker fails or comes back: a cut
// connection, a broker that cannot be reached, a broker that restarts. Apart
// from cli-chat.test.ts, whose tests talk to a broker that stays up, because
// these break the broker or the path to it under the chat (a cuttable proxy,
// a `seqcast serve` process) and assert what the user sees meanwhile.

describe("seqcast chat (CLI end to end)", { timeout: 120_000 }, () => {
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
