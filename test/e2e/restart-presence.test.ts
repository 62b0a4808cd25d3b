import assert from "node:assert/strict";
import { createSeqcastClient } from "../../src/client/index.js";
import { SubscriptionState } from "../../src/client/subscription.js";
import { describe, exited, PROTOCOLS, Recorder, test, testToken, waitUntil } from "../support/fixtures.js";
import { freePort } from "../support/ports.js";

// A graceful restart of the broker under live clients: nobody is announced
// as gone, and once everyone is back every client shows the same presence
// (pubsub.proto, Subscribe: clients replace their view with subscribed.present).


describe("presence across a broker restart", () => {
  test("every client converges on the same, complete presence; nobody is shown as left", async ({ serve, cleanup }) => {
    const port = await freePort();
    const args = ["--port", String(port), "--engine", "memory"];
    const first = await serve(args);
    const users = ["ann", "bob", "cid"];
    const recorders = users.map((user, i) => {
      const p = PROTOCOLS[i % PROTOCOLS.length]!;
      const client = createSeqcastClient({ baseUrl: first.url, token: testToken(user), protocol: p.protocol, httpVersion: p.httpVersion });
      const recorder = new Recorder(client.subscribe(["lobby"], { device: p.name, backoff: { baseMs: 100, maxMs: 400 } }));
      cleanup(() => recorder.subscription.close());
      return recorder;
    });
    // One more who will not come back after the restart.
    const leaver = new Recorder(createSeqcastClient({ baseUrl: first.url, token: testToken("dee") }).subscribe(["lobby"]));
    const view = (r: Recorder) => r.subscription.presence("lobby").map((e) => e.user).sort().join(",");
    await waitUntil(() => recorders.every((r) => view(r) === "ann,bob,cid,dee"), () => `everyone present: ${recorders.map(view)}`);

    const before = recorders.map((r) => r.events.length);
    first.child.kill("SIGTERM");
    assert.equal(await exited(first.child), 0, first.output());
    await leaver.subscription.close(); // gone for good while the broker is down
    const second = await serve(args);
    assert.equal(second.port, port);

    const sessions = (r: Recorder) => r.subscription.presence("lobby").map((e) => e.sessionId).sort().join(",");
    await waitUntil(
      () => recorders.every((r) => r.subscription.state === SubscriptionState.Connected && view(r) === "ann,bob,cid") &&
        new Set(recorders.map(sessions)).size === 1,
      () => `the same presence everywhere: ${recorders.map((r) => `${r.subscription.state} [${view(r)}]`).join(" | ")}`,
      30_000,
    );
    // What the broker itself says agrees with every client.
    const probe = createSeqcastClient({ baseUrl: second.url, token: testToken("probe") });
    const listed = (await probe.presence("lobby")).entries.map((e) => e.sessionId).sort().join(",");
    assert.equal(listed, sessions(recorders[0]!));
    for (const r of recorders) {
      const leaves = r.events.slice(before[recorders.indexOf(r)]).filter((e) => e.type === "presence" && e.kind === "leave");
      assert.deepEqual(leaves, [], "nobody was announced as gone");
    }
  });
});
