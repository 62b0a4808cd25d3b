import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { createSeqcastClient } from "../../src/client/index.js";
import { buildPage, ChatPageDriver, launchChromium, whyNoChromium } from "../support/browser.js";
import { describe, exited, startCuttableProxy, test as base, TEST_SECRET, testToken, waitUntil } from "../support/fixtures.js";
import { freePort } from "../support/ports.js";

// The chat page that `seqcast serve` serves at /, in real Chromium: people
// in separate browser contexts (own storage, own connections) signing in
// through --dev-login, against a spawned broker, as a user would.

const noChromium = whyNoChromium();
if (noChromium) console.warn(`test/browser is skipped: ${noChromium}`);

let browser: Browser;
beforeAll(async () => {
  if (noChromium) return;
  buildPage();
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

const test = base.extend<{
  /** Opens the page as `user`; its browser context is closed after the test, which fails on any page error. */
  person: (url: string, user: string) => Promise<ChatPageDriver>;
}>({
  person: async ({}, use) => {
    const people: ChatPageDriver[] = [];
    await use(async (url, user) => {
      const driver = await ChatPageDriver.signIn(browser, url, user);
      people.push(driver);
      return driver;
    });
    await Promise.all(people.map((p) => p.close()));
    for (const p of people) assert.deepEqual(p.errors, [], `${p.user}'s page threw`);
  },
});



const brief = (lines: Array<{ seq: string; sender: string; text: string }>) => lines.map((l) => `${l.seq} ${l.sender}: ${l.text}`);

describe.skipIf(noChromium !== undefined)("the chat page in Chromium", { timeout: 60_000 }, () => {
  test("two people chat: the same messages in the same order, with sequence, sender and time; presence is live", async ({ serve, person }) => {
    const broker = await serve(["--dev-login", "--engine", "memory"]);
    const alice = await person(broker.url, "alice");
    const bob = await person(broker.url, "bob");
    await alice.waitForWho(["alice:online", "bob:online"]);
    await alice.send("hello bob");
    await bob.waitForLines(1);
    await bob.send("hi alice, all good?");
    for (const p of [alice, bob]) {
      const lines = await p.waitForLines(2);
      assert.deepEqual(brief(lines), ["1 alice: hello bob", "2 bob: hi alice, all good?"]);
      assert.ok(lines.every((l) => /^\d{2}:\d{2}$/.test(l.time)), JSON.stringify(lines));
    }
    // Presence: away and back, seen by the other.
    await bob.page.getByRole("button", { name: "Set away" }).click();
    await alice.waitForWho(["alice:online", "bob:away"]);
    await alice.send("@bob ping me when you are back");
    const shot = await alice.screenshot("chat-page.png");
    // Straight to the run's output: console.log of a passing test is silenced (vitest.config.ts).
    process.stdout.write(`screenshot of the chat page: ${shot}\n`);
    await bob.page.getByRole("button", { name: "Back online" }).click();
    await alice.waitForWho(["alice:online", "bob:online"]);
    await bob.page.getByRole("button", { name: "Sign out" }).click();
    await alice.waitForWho(["alice:online"]);
    await bob.page.getByLabel("Your name").waitFor();
  });

  test("without --dev-login the page asks for a token, and says so when the broker refuses one", async ({ serve }) => {
    const broker = await serve(["--engine", "memory"]);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(broker.url);
      const token = page.getByLabel("Token");
      await token.waitFor();
      assert.equal(await page.getByLabel("Your name").isVisible(), false);
      const alert = page.locator("#sign-in-error");
      await token.fill("not a token");
      await page.getByRole("button", { name: "Sign in" }).click();
      await alert.filter({ hasText: "That is not a token" }).waitFor();
      // Well formed, but signed with another key: the broker's refusal is shown in plain words.
      await token.fill(testToken("tess", { secret: "another secret" }));
      await token.press("Enter");
      await alert.filter({ hasText: "The broker refused your token" }).waitFor();
      await token.fill(testToken("tess"));
      await token.press("Enter");
      await page.locator("#status", { hasText: "Connected to" }).waitFor();
      assert.equal(await page.locator("#me-name").innerText(), "tess");
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test("a terminal chat and the page see one order", async ({ serve, person }) => {
    const broker = await serve(["--dev-login", "--engine", "memory"]);
    const page = await person(broker.url, "pat");
    const cli = spawn(process.execPath, ["bin/seqcast.js", "chat", "--user", "cal", "--url", broker.url, "--room", "general"], {
      env: { ...process.env, SEQCAST_JWT_SECRET: TEST_SECRET, NO_COLOR: "1" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    cli.stdout.on("data", (d) => (out += d));
    try {
      await waitUntil(() => out.includes("* joined general"), () => `the terminal chat to join: ${out}`, 30_000);
      await page.waitForWho(["cal:online", "pat:online"]);
      // Both type at once: the broker's order is the only order, whoever sees it.
      for (let i = 1; i <= 5; i++) cli.stdin.write(`from the terminal ${i}\n`);
      for (let i = 1; i <= 5; i++) await page.send(`from the page ${i}`);
      const lines = await page.waitForLines(10);
      const fromPage = brief(lines);
      await waitUntil(() => (out.match(/^\d{2}:\d{2} \[\d+\] /gm) ?? []).length >= 10, () => `10 messages in the terminal: ${out}`);
      const fromTerminal = [...out.matchAll(/^\d{2}:\d{2} \[(\d+)\] (\w+): (.*)$/gm)].map((m) => `${m[1]} ${m[2]}: ${m[3]}`);
      assert.deepEqual(fromTerminal, fromPage);
      assert.deepEqual(lines.map((l) => Number(l.seq)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    } finally {
      cli.kill("SIGKILL");
      await exited(cli);
    }
  });

  test("a private message reaches only its recipient; @name alone is refused", async ({ serve, person }) => {
    const broker = await serve(["--dev-login", "--engine", "memory"]);
    const [ann, ben, cat] = await Promise.all(["ann", "ben", "cat"].map((user) => person(broker.url, user)));
    await ann.waitForWho(["ann:online", "ben:online", "cat:online"]);
    await ann.send("@ben the key is under the mat");
    // Ben is told there is something new, and reads it.
    await ben.page.locator('[data-room="@ben"] .badge').waitFor();
    await ben.open("Private messages");
    assert.deepEqual(brief(await ben.waitForLines(1)), ["1 ann: the key is under the mat"]);
    // Ann sees what she sent, marked as sent to Ben.
    await ann.open("Private messages");
    await ann.page.locator("#log li .sender", { hasText: "ann → ben" }).waitFor();
    // "@ben" alone is a mistake, not a public message.
    await ann.open("#general");
    await ann.send("@ben");
    await ann.page.getByRole("alert").filter({ hasText: "Write the message after @ben" }).waitFor();
    await ann.send("public now");
    await cat.waitForLines(1);
    assert.deepEqual(brief(await cat.lines()), ["1 ann: public now"], "cat saw only the public message");
    await cat.open("Private messages");
    assert.deepEqual(await cat.lines(), []);
    assert.equal(await cat.page.locator('[data-room="@cat"] .badge').count(), 0);
  });

  test("the page resumes after the broker restarts: what was typed meanwhile is sent, presence converges", async ({ serve, person }) => {
    const port = await freePort();
    const first = await serve(["--dev-login", "--port", String(port)]);
    const args = ["--dev-login", "--port", String(port), "--data-dir", first.dataDir];
    const ada = await person(first.url, "ada");
    const bo = await person(first.url, "bo");
    await ada.send("before the restart");
    await bo.waitForLines(1);
    first.child.kill("SIGTERM");
    assert.equal(await exited(first.child), 0);
    await ada.waitForStatus(/^Cannot reach the broker at http:\/\/127\.0\.0\.1:\d+ /);
    await ada.send("typed while it was down");
    await ada.page.locator("#log li.pending", { hasText: "typed while it was down" }).waitFor();
    assert.match(await ada.page.locator("#log li.pending").innerText(), /sending…/);
    await serve(args);
    for (const p of [ada, bo]) {
      await p.waitForStatus(/^Connected to /, 30_000);
      const lines = await p.waitForLines(2, 20_000);
      assert.deepEqual(brief(lines), ["1 ada: before the restart", "2 ada: typed while it was down"], p.user);
      await p.waitForWho(["ada:online", "bo:online"]);
    }
    assert.equal(await ada.page.locator("#log li.pending").count(), 0);
    // Nobody was told of a reset: the durable store resumed both without a gap.
    assert.deepEqual((await ada.notes()).filter((n) => /lost|cleared/.test(n)), []);
  });

  test("a gap the broker can no longer fill shows how many messages were lost", async ({ serve, person, cleanup }) => {
    const broker = await serve(["--dev-login", "--engine", "memory", "--history-size", "2"]);
    // The page reaches the broker through a proxy whose connections the test cuts.
    const proxy = await startCuttableProxy(broker.port);
    cleanup(() => proxy.close());
    const lou = await person(proxy.url, "lou");
    const publisher = createSeqcastClient({ baseUrl: broker.url, token: testToken("max") });
    await publisher.publish("general", "m1");
    await lou.waitForLines(1);
    proxy.blocked = true;
    proxy.cut();
    await lou.waitForStatus(/^Cannot reach the broker/);
    for (let i = 2; i <= 6; i++) await publisher.publish("general", `m${i}`);
    proxy.blocked = false;
    await lou.waitForStatus(/^Connected to /, 30_000);
    await lou.page.locator("#log li.note.warn", { hasText: "5 messages lost: the broker no longer had them." }).waitFor();
    await publisher.publish("general", "m7");
    await waitUntil(async () => (await lou.lines()).length === 2, "m7 after the loss");
    assert.deepEqual(brief(await lou.lines()), ["1 max: m1", "7 max: m7"]);
  });
});
