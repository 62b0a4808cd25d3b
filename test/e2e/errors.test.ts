import assert from "node:assert/strict";
import http from "node:http";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { PubSubService } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { createTransport } from "../../src/client/transport.js";
import { SubscriptionState } from "../../src/client/subscription.js";
import { errorReason, retryAfterMs } from "../../src/client/retry.js";
import { test, describe, PROTOCOLS, clientFor, Recorder, testToken } from "../support/fixtures.js";

async function codeOf(call: Promise<unknown>): Promise<{ code: string; message: string; reason?: string; retryAfterMs?: number }> {
  try {
    await call;
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: Code[e.code], message: e.rawMessage, reason: errorReason(e), retryAfterMs: retryAfterMs(e) };
  }
  assert.fail("expected the call to fail");
}

/** The first event or error of a raw Subscribe stream. */
const firstOf = (stream: AsyncIterable<unknown>) =>
  (async () => {
    for await (const _ of stream) break;
  })();

for (const p of PROTOCOLS) {
  describe(`errors over ${p.name}`, () => {
    test.override({ brokerConfig: { maxMessageBytes: 1024, maxRoomsPerSession: 3 } });

    test("carries a machine-readable reason (google.rpc.ErrorInfo) and retry info where a wait helps", async ({ broker, client }) => {
      const alice = client("alice", p);
      const cases: Array<[string, () => Promise<unknown>, string, string]> = [
        ["bad room", () => alice.publish("no good", "x"), "InvalidArgument", "INVALID_ROOM"],
        ["empty message", () => alice.publish("ok", ""), "InvalidArgument", "INVALID_MESSAGE"],
        ["oversized message", () => alice.publish("ok", "x".repeat(2000)), "InvalidArgument", "MESSAGE_TOO_LARGE"],
        ["bad filter", () => alice.history("ok", { filter: "content ==" }), "InvalidArgument", "INVALID_FILTER"],
        ["empty range", () => alice.history("ok", { after: 5n, before: 6n }), "InvalidArgument", "INVALID_POSITION"],
        ["another user's inbox", () => alice.history("@bob"), "PermissionDenied", "INBOX_FORBIDDEN"],
        ["admin RPC", () => alice.rpc.clearHistory({ room: "ok" }), "PermissionDenied", "ADMIN_REQUIRED"],
        ["unknown session", () => alice.rpc.join({ sessionId: "nope", rooms: [] }), "NotFound", "SESSION_NOT_FOUND"],
        ["too many rooms", () => firstOf(alice.rpc.subscribe({ rooms: ["a", "b", "c", "d"].map((room) => ({ room })) })), "ResourceExhausted", "ROOM_LIMIT"],
        ["expired token", () => clientFor(broker.url, "late", p, { expiresIn: -60 }).publish("ok", "x"), "Unauthenticated", "TOKEN_EXPIRED"],
        ["forged token", () => clientFor(broker.url, "eve", p, { secret: "not the broker's" }).publish("ok", "x"), "Unauthenticated", "TOKEN_INVALID"],
      ];
      for (const [what, call, code, reason] of cases) {
        const r = await codeOf(call());
        assert.deepEqual([r.code, r.reason], [code, reason], `${what}: ${r.message}`);
      }
      const missing = await codeOf(firstOf(createClient(PubSubService, createTransport({ baseUrl: broker.url, protocol: p.protocol, httpVersion: p.httpVersion })).subscribe({})));
      assert.deepEqual([missing.code, missing.reason], ["Unauthenticated", "TOKEN_MISSING"]);
    });

    test("a Subscribe over the room limit ends the subscription for good instead of reconnecting forever", async ({ client }) => {
      const sub = client("greedy", p).subscribe(["a", "b", "c", "d"], { backoff: { baseMs: 5, maxMs: 20 } });
      const rec = new Recorder(sub);
      await assert.rejects(sub.waitFor(SubscriptionState.Connected), /at most 3 rooms/);
      const states = rec.ofType("state");
      assert.deepEqual(states.map((e) => e.to), [SubscriptionState.Closed], "no reconnect attempt");
      assert.equal(errorReason(states[0]!.error), "ROOM_LIMIT");
    });

    test("rejects bad room names with INVALID_ARGUMENT saying what is wrong", async ({ client }) => {
      const c = client("alice", p);
      for (const [room, needle] of [
        ["", "must not be empty"],
        ["x".repeat(129), "at most 128"],
        ["has space", "not a room name"],
        ["a..b", "not a room name"],
        ["emoji🙂", "not a room name"],
      ] as const) {
        const r = await codeOf(c.publish(room, "hi"));
        assert.equal(r.code, "InvalidArgument", room);
        assert.match(r.message, new RegExp(needle));
      }
      assert.equal((await codeOf(c.history("bad room"))).code, "InvalidArgument");
      assert.equal((await codeOf(c.presence("bad/room"))).code, "InvalidArgument");
    });

    test("rejects empty and oversized messages", async ({ client }) => {
      const c = client("alice", p);
      const empty = await codeOf(c.publish("ok", ""));
      assert.equal(empty.code, "InvalidArgument");
      assert.match(empty.message, /content/);
      const big = await codeOf(c.publish("ok", "x".repeat(2000)));
      assert.equal(big.code, "InvalidArgument");
      assert.match(big.message, /at most 1024/);
      const huge = await codeOf(c.publish("ok", "x".repeat(1_000_000)));
      assert.equal(huge.code, "InvalidArgument");
      assert.match(huge.message, /1000000 bytes/);
      // Payload alone is a valid body.
      const ok = await c.publish("ok", "", { payload: new Uint8Array([1]) });
      assert.equal(ok.sequence, 1n);
    });

    test("rejects a token whose subject is not a user name", async ({ client }) => {
      const bad = client("not a name!", p);
      const r = await codeOf(bad.publish("ok", "hi"));
      assert.equal(r.code, "Unauthenticated");
      assert.match(r.message, /sub/);
    });

    test("checks sessions: unknown is NOT_FOUND, another user's is PERMISSION_DENIED, too many rooms RESOURCE_EXHAUSTED", async ({ client }) => {
      const alice = client("alice", p);
      assert.equal((await codeOf(alice.rpc.join({ sessionId: "nope", rooms: [{ room: "a" }] }))).code, "NotFound");
      const sub = alice.subscribe(["a"]);
      const rec = new Recorder(sub);
      await rec.subscribedTo("a");
      const mallory = client("mallory", p);
      const stolen = await codeOf(mallory.rpc.join({ sessionId: sub.sessionId!, rooms: [{ room: "b" }] }));
      assert.equal(stolen.code, "PermissionDenied");
      const tooMany = await codeOf(
        alice.rpc.join({ sessionId: sub.sessionId!, rooms: ["b", "c", "d"].map((room) => ({ room })) }),
      );
      assert.equal(tooMany.code, "ResourceExhausted");
      const badJoin = await codeOf(alice.rpc.join({ sessionId: sub.sessionId!, rooms: [{ room: "no good" }] }));
      assert.equal(badJoin.code, "InvalidArgument");
      assert.match(badJoin.message, /rooms\[0\]\.room/);
      await sub.close();
    });

    test("fails a Subscribe with bad rooms before it sends anything, and keeps other streams intact", async ({ client }) => {
      const c = client("alice", p);
      const good = c.subscribe(["intact"]);
      const rec = new Recorder(good);
      await rec.subscribedTo("intact");
      const stream = c.rpc.subscribe({ rooms: [{ room: "intact" }, { room: "" }] });
      const events: unknown[] = [];
      const r = await codeOf(
        (async () => {
          for await (const response of stream) events.push(...response.events);
        })(),
      );
      assert.equal(r.code, "InvalidArgument");
      assert.equal(events.length, 0);
      const bogusSince = await codeOf(
        (async () => {
          for await (const _ of c.rpc.subscribe({ rooms: [{ room: "x", since: { epoch: "", sequence: 5n } }] }));
        })(),
      );
      assert.equal(bogusSince.code, "InvalidArgument");
      await c.publish("intact", "still here");
      await rec.until((x) => x.contents("intact").includes("still here"), "message on the intact stream");
      await good.close();
    });

    test("validates history ranges", async ({ client }) => {
      const c = client("alice", p);
      assert.equal((await codeOf(c.history("ok", { limit: 5000 }))).code, "InvalidArgument");
      assert.equal((await codeOf(c.history("ok", { after: 5n, before: 6n }))).code, "InvalidArgument");
    });
  });
}

describe("hostile input", () => {

  test("answers garbage on the wire with an error and keeps serving", async ({ broker }) => {
    const post = (path: string, headers: Record<string, string>, body: Buffer | string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(`${broker.url}${path}`, { method: "POST", headers }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", reject);
        req.end(body);
      });
    const path = "/seqcast.v1.PubSubService/Publish";
    // Undecodable protobuf is refused by the Connect runtime before our code
    // runs; like grpc-go it reports INTERNAL ("parse binary"), not a crash.
    assert.equal(await post(path, { "content-type": "application/proto", authorization: `Bearer ${testToken("x")}` }, Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01])), 500);
    assert.equal(await post(path, { "content-type": "application/json", authorization: `Bearer ${testToken("x")}` }, "{not json"), 400);
    assert.equal(await post(path, { "content-type": "application/json", authorization: `Bearer ${testToken("x")}` }, '{"room": 5}'), 400);
    assert.equal(await post("/nope.Service/Method", { "content-type": "application/json" }, "{}"), 404);
    // Raw bytes that are neither HTTP/1.1 nor HTTP/2.
    const net = await import("node:net");
    await new Promise<void>((resolve) => {
      const socket = net.connect(broker.port, "127.0.0.1", () => socket.end(Buffer.from([0, 1, 2, 3, 255, 254])));
      socket.on("close", () => resolve());
      socket.on("error", () => resolve());
      socket.resume();
    });
    const c = clientFor(broker.url, "alice", PROTOCOLS[0]);
    assert.equal((await c.publish("after-garbage", "alive")).sequence, 1n);
  });
});
