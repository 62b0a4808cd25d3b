import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { setMaxListeners } from "node:events";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { PubSubService } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { PresenceState } from "../../gen/es/seqcast/v1/types_pb.js";
import type { PresenceResult } from "../../src/client/client.js";
import type { SubscriptionOptions } from "../../src/client/subscription.js";
import { test as base, describe, PROTOCOLS, clientFor, startBroker, Recorder, startCuttableProxy, testToken, waitUntil, pause } from "../support/fixtures.js";

const grpc = PROTOCOLS[0];

/** Presence tests join one room per subscription and look at the room from outside. */
const test = base.extend<{
  join: (user: string, room: string, options?: SubscriptionOptions, url?: string) => Recorder;
  presenceOf: (room: string) => Promise<PresenceResult>;
}>({
  join: async ({ broker }, use) => {
    const open: Recorder[] = [];
    await use((user, room, options = {}, url = broker.url) => {
      const rec = new Recorder(clientFor(url, user, grpc).subscribe([room], options));
      open.push(rec);
      return rec;
    });
    await Promise.allSettled(open.map((r) => r.subscription.close()));
  },
  presenceOf: async ({ broker }, use) => {
    await use((room) => clientFor(broker.url, "observer", grpc).presence(room));
  },
});

describe("presence", () => {
  test.override({ brokerConfig: { pingIntervalMs: 200, deadTimeoutMs: 1_000, presenceGraceMs: 1_000 } });

  test("lists every device of a user; the user stays while any session does", async ({ join, presenceOf }) => {
    const phone = join("ann", "devices", { device: "phone" });
    const laptop = join("ann", "devices", { device: "laptop" });
    const watcher = join("wes", "devices");
    await Promise.all([phone.subscribedTo("devices"), laptop.subscribedTo("devices"), watcher.subscribedTo("devices")]);
    await waitUntil(async () => (await presenceOf("devices")).sessionCount === 3, "3 sessions present");
    const all = await presenceOf("devices");
    assert.equal(all.userCount, 2);
    assert.equal(all.sessionCount, 3);
    const ann = all.entries.filter((e) => e.user === "ann");
    assert.deepEqual(ann.map((e) => e.device).sort(), ["laptop", "phone"]);
    assert.ok(ann.every((e) => e.state === PresenceState.ONLINE && e.since && e.lastActive && e.joinedAt));
    await phone.subscription.close();
    await watcher.until((r) => r.ofType("presence").some((e) => e.kind === "leave" && e.entry.device === "phone"), "phone's leave");
    const after = await presenceOf("devices");
    assert.deepEqual(after.entries.filter((e) => e.user === "ann").map((e) => e.device), ["laptop"]);
    assert.equal(after.userCount, 2, "ann is still here on her laptop");
  });

  test("goes away after the idle time and comes back on activity", async ({ join, presenceOf }) => {
    const idle = join("ida", "idle", { awayAfterMs: 300 });
    const watcher = join("wes", "idle");
    await Promise.all([idle.subscribedTo("idle"), watcher.subscribedTo("idle")]);
    const states = () =>
      watcher.ofType("presence").filter((e) => e.entry.user === "ida" && e.kind === "update").map((e) => e.entry.state);
    await watcher.until(() => states().includes(PresenceState.AWAY), "ida away");
    assert.equal((await presenceOf("idle")).entries.find((e) => e.user === "ida")?.state, PresenceState.AWAY);
    idle.subscription.markActive();
    await watcher.until(() => states().at(-1) === PresenceState.ONLINE, "ida back online");
    assert.equal((await presenceOf("idle")).entries.find((e) => e.user === "ida")?.state, PresenceState.ONLINE);
  });

  test("shows a frozen client (SIGSTOP) offline after the dead-connection timeout", async ({ join, presenceOf, broker, cleanup }) => {
    const room = "frozen";
    const watcher = join("wes", room);
    await watcher.subscribedTo(room);
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "test/e2e/fixtures/subscriber-process.ts", broker.url, testToken("ice"), room, "grpc", "2"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    cleanup(async () => child.kill("SIGKILL"));
    await watcher.until((r) => r.ofType("presence").some((e) => e.entry.user === "ice" && e.kind === "join"), "ice's join", 30_000);
    const frozenAt = Date.now();
    child.kill("SIGSTOP"); // the process stops; the kernel keeps its TCP connection open
    await watcher.until((r) => r.ofType("presence").some((e) => e.entry.user === "ice" && e.kind === "leave"), "ice's leave", 10_000);
    const took = Date.now() - frozenAt;
    console.log(`# frozen client shown offline after ${took} ms (dead timeout 1000 ms + grace 1000 ms)`);
    assert.ok(took >= 1_000, "not before the dead-connection timeout");
    assert.deepEqual((await presenceOf(room)).entries.map((e) => e.user), ["wes"]);
    child.kill("SIGKILL");
  });

  test("does not flap leave/join when a client reconnects within the grace period", async ({ join, presenceOf, broker, cleanup }) => {
    const room = "flaky";
    const proxy = await startCuttableProxy(broker.port);
    cleanup(() => proxy.close());
    // The watcher first: joined together, flo could be present before wes subscribed, and wes would see no join event for flo.
    const watcher = join("wes", room);
    await watcher.subscribedTo(room);
    const flaky = join("flo", room, { backoff: { baseMs: 10, maxMs: 50 } }, proxy.url);
    await flaky.subscribedTo(room);
    await watcher.until((r) => r.ofType("presence").some((e) => e.entry.user === "flo" && e.kind === "join"), "flo's join");
    const before = watcher.ofType("presence").filter((e) => e.entry.user === "flo").length;
    proxy.cut();
    await flaky.until((r) => r.ofType("subscribed").length === 2, "flo resubscribed");
    await pause(1_500); // past the grace period
    const flo = watcher.ofType("presence").filter((e) => e.entry.user === "flo").slice(before);
    assert.deepEqual(flo.map((e) => e.kind).filter((k) => k !== "update"), [], "no leave, no second join");
    assert.deepEqual((await presenceOf(room)).entries.filter((e) => e.user === "flo").length, 1);
  });

  test("carries presence events in order with the room's messages", async ({ join, client }) => {
    const room = "ordered";
    const watcher = join("wes", room);
    await watcher.subscribedTo(room);
    const pub = client("pam", grpc);
    await pub.publish(room, "before");
    const guest = join("gil", room);
    await watcher.until((r) => r.ofType("presence").some((e) => e.entry.user === "gil" && e.kind === "join"), "gil's join");
    await pub.publish(room, "after");
    await guest.subscription.close();
    await pub.publish(room, "gone");
    await watcher.until((r) => r.contents(room).includes("gone"), "the last message");
    const timeline = watcher.events.flatMap((e) =>
      e.type === "message" ? [e.message.content] : e.type === "presence" && e.entry.user === "gil" ? [`${e.kind}:gil`] : [],
    );
    assert.deepEqual(timeline, ["before", "join:gil", "after", "leave:gil", "gone"]);
  });

  test("handles 1,000 sessions in one room", async ({ cleanup }) => {
    const room = "crowd";
    // A broker of its own with the default dead-connection timeout: a 1 s
    // timeout would cut clients whose event loop is busy with the join flood.
    const crowdServer = await startBroker();
    cleanup(() => crowdServer.close());
    const presenceOf = (r: string) => clientFor(crowdServer.url, "observer", grpc).presence(r);
    // 20 connections of 50 streams (an HTTP/2 server allows 100 concurrent streams per connection by default).
    const connections = Array.from({ length: 20 }, () => ({
      rpc: createClient(PubSubService, createGrpcTransport({ baseUrl: crowdServer.url })),
      controller: (() => {
        const c = new AbortController();
        setMaxListeners(100, c.signal); // 50 streams share it
        return c;
      })(),
    }));
    cleanup(async () => connections.forEach((c) => c.controller.abort()));
    let subscribed = 0;
    for (let i = 0; i < 1000; i++) {
      const headers = { authorization: `Bearer ${testToken(`u${i % 250}`)}` };
      const { rpc, controller } = connections[i % 20]!;
      void (async () => {
        try {
          for await (const r of rpc.subscribe({ rooms: [{ room }], device: `d${i}` }, { headers, signal: controller.signal }))
            if (r.events.some((e) => e.event.case === "subscribed")) subscribed++;
        } catch {
          // aborted at the end
        }
      })();
    }
    // Every join is announced to everyone already there (~500k presence events in all): give a busy machine time.
    await waitUntil(() => subscribed === 1000, "1000 sessions subscribed", 100_000);
    await waitUntil(async () => (await presenceOf(room)).sessionCount === 1000, "1000 sessions present", 20_000);
    const timings: string[] = [];
    let crowd = await presenceOf(room);
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      crowd = await presenceOf(room);
      timings.push((performance.now() - started).toFixed(1));
    }
    console.log(`# GetPresence of 1000 sessions, 5 calls: ${timings.join(", ")} ms`);
    assert.equal(crowd.sessionCount, 1000);
    assert.equal(crowd.userCount, 250);
    assert.equal(new Set(crowd.entries.map((e) => e.sessionId)).size, 1000);
    connections.forEach((c) => c.controller.abort());
  });
});
