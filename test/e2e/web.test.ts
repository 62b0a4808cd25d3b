import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultBrokerConfig } from "../../src/broker/config.js";
import { createMemoryEngine } from "../../src/engine/memory.js";
import { startServer, type RunningServer } from "../../src/server/server.js";
import { createWebPage, type WebOptions } from "../../src/server/web.js";
import { createSeqcastClient } from "../../src/client/index.js";
import { SubscriptionState } from "../../src/client/subscription.js";
import { createWebSeqcastClient } from "../../src/client/web.js";
import { mintToken } from "../../src/tokens/mint.js";
import { clientFor, describe, test as base, TEST_SECRET, testAuthenticate, testToken, waitUntil } from "../support/fixtures.js";

// The chat page's static files and dev login (src/server/web.ts), served on
// the broker's one port beside the RPCs, over HTTP/1.1 and HTTP/2.

/** A built page in a temporary directory, like dist/web. */
function builtPage(): string {
  const dir = mkdtempSync(join(tmpdir(), "seqcast-web-"));
  mkdirSync(join(dir, "assets"));
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>chat</title>");
  writeFileSync(join(dir, "assets", "main.js"), "console.log('hi')");
  return dir;
}

const secret = new TextEncoder().encode(TEST_SECRET);
const devLogin = (user: string) => mintToken(secret, { user, ttlMs: 60_000 });

const test = base.extend<{ serveWeb: (options: WebOptions) => Promise<RunningServer> }>({
  serveWeb: async ({ cleanup }, use) => {
    await use(async (options) => {
      const server = await startServer({
        config: defaultBrokerConfig,
        engine: createMemoryEngine,
        port: 0,
        authenticate: await testAuthenticate(),
        web: createWebPage(options),
      });
      cleanup(() => server.close());
      return server;
    });
  },
});

const post = (url: string, body: string, type = "application/json") =>
  fetch(url, { method: "POST", headers: { "content-type": type }, body });

describe("the chat page on the broker's port", () => {
  test("serves the built page and its assets with revalidation, and leaves RPCs alone", async ({ serveWeb }) => {
    const server = await serveWeb({ dir: builtPage() });
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /text\/html/);
    assert.match(page.headers.get("content-security-policy")!, /default-src 'self'/);
    assert.equal(await page.text(), "<!doctype html><title>chat</title>");
    const script = await fetch(`${server.url}/assets/main.js?v=1`);
    assert.deepEqual([script.status, script.headers.get("content-type"), script.headers.get("cache-control")], [200, "text/javascript; charset=utf-8", "no-cache"]);
    const again = await fetch(`${server.url}/assets/main.js`, { headers: { "if-none-match": script.headers.get("etag")! } });
    assert.equal(again.status, 304);
    const head = await fetch(`${server.url}/index.html`, { method: "HEAD" });
    assert.deepEqual([head.status, await head.text()], [200, ""]);
    assert.equal((await fetch(`${server.url}/assets/../index.html.bak`)).status, 404);
    assert.equal((await fetch(`${server.url}/assets/nothing.js`)).status, 404);
    assert.deepEqual(await (await fetch(`${server.url}/config.json`)).json(), { devLogin: false });
    // Without --dev-login there is no token endpoint at all: the RPC handler answers 404.
    assert.equal((await post(`${server.url}/dev/token`, '{"user": "mallory"}')).status, 404);
    // The RPCs still work beside it.
    await clientFor(server.url, "ann").publish("web", "hello");
  });

  test("over HTTP/2 too", async ({ serveWeb }) => {
    const server = await serveWeb({ dir: builtPage() });
    const session = http2.connect(server.url);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const request = session.request({ ":path": "/" });
        request.on("response", (headers) => resolve(Number(headers[":status"])));
        request.on("error", reject);
        request.resume();
      });
      assert.equal(status, 200);
    } finally {
      session.close();
    }
  });

  test("says how to build the page when it is missing", async ({ serveWeb }) => {
    const server = await serveWeb({ dir: join(tmpdir(), "seqcast-no-such-page") });
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 503);
    assert.match(await page.text(), /npm run build:web/);
    assert.equal(createWebPage({ dir: join(tmpdir(), "seqcast-no-such-page") }).built, false);
  });

  test("with dev login, mints a short-lived token for a valid user name and refuses anything else", async ({ serveWeb }) => {
    const server = await serveWeb({ dir: builtPage(), devLogin });
    assert.deepEqual(await (await fetch(`${server.url}/config.json`)).json(), { devLogin: true });
    const answer = await post(`${server.url}/dev/token`, '{"user": "ann"}');
    assert.equal(answer.status, 200);
    const { token, user, expiresInSeconds } = (await answer.json()) as { token: string; user: string; expiresInSeconds: number };
    assert.deepEqual([user, expiresInSeconds], ["ann", 3600]);
    // The broker accepts it: the page can chat as ann.
    const sent = await clientFor(server.url, "ann").publish("web", "x");
    const history = await clientFor(server.url, "bob").history("web");
    assert.equal(history.messages.at(-1)?.sequence, sent.sequence);
    const asAnn = createSeqcastClient({ baseUrl: server.url, token });
    assert.equal((await asAnn.publish("web", "from the page")).sequence, sent.sequence + 1n);
    const refusals: Array<[string, string | undefined, number, RegExp]> = [
      ['{"user": "no spaces"}', undefined, 400, /not a user name/],
      ['{"name": "ann"}', undefined, 400, /user: required/],
      ["not json", undefined, 400, /not JSON/],
      ['{"user": "ann"}', "text/plain", 415, /JSON/],
      [JSON.stringify({ user: "x".repeat(2000) }), undefined, 413, /too large/],
    ];
    for (const [body, type, status, error] of refusals) {
      const response = await post(`${server.url}/dev/token`, body, type);
      assert.equal(response.status, status, body);
      assert.match(((await response.json()) as { error: string }).error, error);
    }
    assert.equal((await fetch(`${server.url}/dev/token`)).status, 405);
  });
});

describe("the SDK's browser entry (connect-web over fetch), run in Node", () => {
  test("subscribes and publishes over the Connect protocol on HTTP/1.1, in order, with presence at join", async ({ broker, subscribe, cleanup }) => {
    const other = subscribe("bob", ["web.room"]);
    await other.subscribedTo("web.room");
    const web = createWebSeqcastClient({ baseUrl: broker.url, token: testToken("ann") });
    const sub = web.subscribe(["web.room"], { device: "fetch" });
    cleanup(() => sub.close());
    const seen: string[] = [];
    let present: string[] = [];
    sub.on((event) => {
      if (event.type === "message") seen.push(event.message.content);
      if (event.type === "subscribed") present = event.present.map((e) => e.user);
    });
    await sub.waitFor(SubscriptionState.Connected);
    await waitUntil(() => present.length > 0, "subscribed with who is here");
    assert.deepEqual(present, ["bob"]);
    for (const text of ["one", "two", "three"]) await web.publish("web.room", text);
    await waitUntil(() => seen.length === 3, "three messages over fetch");
    assert.deepEqual(seen, ["one", "two", "three"]);
    await other.until((r) => r.contents("web.room").length === 3, "bob got them too");
  });
});
