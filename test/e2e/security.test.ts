import assert from "node:assert/strict";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { PubSubService } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { createTransport } from "../../src/client/transport.js";
import { errorReason, retryAfterMs } from "../../src/client/retry.js";
import { test, describe, PROTOCOLS, Recorder, testToken, waitUntil, type ProtocolCase } from "../support/fixtures.js";

const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** Tokens that must all be refused, with what the refusal must say. */
const BAD_TOKENS: Array<{ name: string; header: () => Record<string, string>; says: RegExp }> = [
  { name: "no token", header: () => ({}), says: /missing 'authorization'/ },
  { name: "not a Bearer token", header: () => ({ authorization: "Basic YWxpY2U6cHc=" }), says: /not a Bearer token/ },
  { name: "garbage", header: () => ({ authorization: "Bearer not.a.jwt" }), says: /malformed token/ },
  { name: "expired token", header: () => ({ authorization: `Bearer ${testToken("alice", { expiresIn: -3600 })}` }), says: /expired/ },
  {
    name: "forged signature",
    header: () => ({ authorization: `Bearer ${testToken("alice", { secret: "someone-elses-secret" })}` }),
    says: /signature/,
  },
  {
    name: "alg none",
    header: () => {
      const now = Math.floor(Date.now() / 1000);
      return { authorization: `Bearer ${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "alice", iat: now, exp: now + 60 })}.` };
    },
    says: /'none'/,
  },
];

/** Every RPC of the service, called with the given headers; resolves with the error code or "OK". */
function rpcCalls(rpc: Client<typeof PubSubService>) {
  return {
    Publish: (headers: Record<string, string>) => rpc.publish({ room: "general", content: "x" }, { headers }),
    Subscribe: async (headers: Record<string, string>) => {
      for await (const _ of rpc.subscribe({ rooms: [{ room: "general" }] }, { headers })) break;
    },
    Join: (headers: Record<string, string>) => rpc.join({ sessionId: "s", rooms: [{ room: "general" }] }, { headers }),
    Leave: (headers: Record<string, string>) => rpc.leave({ sessionId: "s", rooms: ["general"] }, { headers }),
    Ack: (headers: Record<string, string>) => rpc.ack({ sessionId: "s", acks: [] }, { headers }),
    SetPresence: (headers: Record<string, string>) => rpc.setPresence({ sessionId: "s", state: 2 }, { headers }),
    GetHistory: (headers: Record<string, string>) => rpc.getHistory({ room: "general" }, { headers }),
    GetPresence: (headers: Record<string, string>) => rpc.getPresence({ room: "general" }, { headers }),
    ClearHistory: (headers: Record<string, string>) => rpc.clearHistory({ room: "general" }, { headers }),
  };
}

async function outcome(call: Promise<unknown>): Promise<{ code: string; message: string; reason?: string; retryAfterMs?: number }> {
  try {
    await call;
    return { code: "OK", message: "" };
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: Code[e.code], message: e.rawMessage, reason: errorReason(e), retryAfterMs: retryAfterMs(e) };
  }
}

const protocolsAll: ProtocolCase[] = [...PROTOCOLS];

describe("security matrix", () => {
  test.override({ brokerConfig: { publishRate: 20, publishBurst: 5 } });

  for (const p of protocolsAll) {
    test(`refuses every RPC without a valid token over ${p.name}, saying why`, async ({ broker }) => {
      const rpc = createClient(PubSubService, createTransport({ baseUrl: broker.url, protocol: p.protocol, httpVersion: p.httpVersion }));
      for (const [name, call] of Object.entries(rpcCalls(rpc)))
        for (const bad of BAD_TOKENS) {
          const r = await outcome(call(bad.header()));
          assert.equal(r.code, "Unauthenticated", `${name} with ${bad.name}: ${r.code} ${r.message}`);
          assert.match(r.message, bad.says, `${name} with ${bad.name}`);
        }
    });

    test(`keeps sessions, admin RPCs and inboxes to their owners over ${p.name}`, async ({ client, cleanup }) => {
      const alice = client("alice", p);
      const mallory = client("mallory", p);
      const sub = alice.subscribe(["general"]);
      cleanup(() => sub.close());
      await new Recorder(sub).subscribedTo("general");
      await waitUntil(() => !!sub.sessionId, "session id");
      const sessionId = sub.sessionId!;
      const denied = async (what: string, call: Promise<unknown>, says: RegExp) => {
        const r = await outcome(call);
        assert.equal(r.code, "PermissionDenied", `${what}: ${r.code} ${r.message}`);
        assert.match(r.message, says, what);
      };
      await denied("Join on another user's session", mallory.rpc.join({ sessionId, rooms: [{ room: "x" }] }), /another user/);
      await denied("Leave on another user's session", mallory.rpc.leave({ sessionId, rooms: ["general"] }), /another user/);
      await denied("Ack on another user's session", mallory.rpc.ack({ sessionId, acks: [] }), /another user/);
      await denied("SetPresence on another user's session", mallory.rpc.setPresence({ sessionId, state: 2 }), /another user/);
      await denied("ClearHistory without admin", mallory.rpc.clearHistory({ room: "general" }), /admin/);
      await denied("Subscribe to @bob", (async () => {
        for await (const _ of mallory.rpc.subscribe({ rooms: [{ room: "@bob" }] })) break;
      })(), /inbox/);
      await denied("GetHistory of @bob", mallory.history("@bob"), /inbox/);
      await denied("GetPresence of @bob", mallory.presence("@bob"), /inbox/);
      const own = mallory.subscribe(["lobby"]);
      cleanup(() => own.close());
      await new Recorder(own).subscribedTo("lobby");
      await waitUntil(() => !!own.sessionId, "own session");
      await denied("Join @bob on a live session", mallory.rpc.join({ sessionId: own.sessionId!, rooms: [{ room: "@bob" }] }), /inbox/);
      // Patterns that name an inbox are refused; patterns that match everything never match one.
      for (const pattern of ["@*", "@>", "@bob.>"]) {
        const r = await outcome(
          (async () => {
            for await (const _ of mallory.rpc.subscribe({ rooms: [{ room: pattern }] })) break;
          })(),
        );
        assert.ok(["InvalidArgument", "PermissionDenied"].includes(r.code), `${pattern}: ${r.code}`);
      }
      const wide = new Recorder(mallory.subscribe([">", "*"]));
      cleanup(() => wide.subscription.close());
      await Promise.all([wide.subscribedTo(">"), wide.subscribedTo("*")]);
      await alice.publish("@zoe", `for zoe only over ${p.name}`);
      await alice.publish("lobby", "public");
      await wide.until((r) => r.contents().includes("public"), "the public message through '>'");
      assert.ok(!wide.messages().some((m) => m.room.startsWith("@")), "no inbox message through a pattern");
    });
  }

  test("delivers a private message to all of Bob's devices and no byte of it to anyone else", async ({ client, cleanup }) => {
    const p = PROTOCOLS[0];
    const bob1 = new Recorder(client("bob", p).subscribe(["@bob"], { device: "phone" }));
    const bob2 = new Recorder(client("bob", PROTOCOLS[1]).subscribe(["@bob"], { device: "laptop" }));
    // Carol listens wherever she may: her own inbox and a public room.
    const carolRaw: string[] = [];
    const carol = client("carol", p);
    const carolSub = carol.subscribe(["@carol", "general"]);
    const carolRec = new Recorder(carolSub);
    carolSub.on((e) => carolRaw.push(JSON.stringify(e, (_, v) => (typeof v === "bigint" ? String(v) : v))));
    cleanup(() => bob1.subscription.close()); cleanup(() => bob2.subscription.close()); cleanup(() => carolSub.close());
    await Promise.all([bob1.subscribedTo("@bob"), bob2.subscribedTo("@bob"), carolRec.subscribedTo("general")]);

    const alice = client("alice", p);
    const sent = await alice.publish("@bob", "the secret is 42");
    assert.equal(sent.sequence, 1n, "the sender gets the position in Bob's inbox");
    for (const r of [bob1, bob2]) {
      await r.until((x) => x.messages("@bob").length === 1, "Bob's DM");
      assert.equal(r.messages("@bob")[0]!.sender, "alice", "the sender is the token's subject");
      assert.equal(r.messages("@bob")[0]!.content, "the secret is 42");
    }
    assert.deepEqual((await client("bob", p).history("@bob")).messages.map((m) => m.content), ["the secret is 42"]);
    await alice.publish("general", "public");
    await carolRec.until((r) => r.messages("general").length === 1, "carol's public message");
    assert.ok(!carolRaw.join("\n").includes("secret"), "nothing of Bob's inbox reached Carol");
  });

  test("limits rooms by the token's patterns", async ({ client }) => {
    const p = PROTOCOLS[0];
    const teamOnly = client("tess", p, { publish: ["team.*"], subscribe: ["team.>", "lobby"] });
    assert.equal((await teamOnly.publish("team.a", "ok")).duplicate, false);
    const pub = await outcome(teamOnly.publish("general", "no"));
    assert.equal(pub.code, "PermissionDenied");
    assert.match(pub.message, /publishing to "general"/);
    assert.equal((await outcome(teamOnly.history("general"))).code, "PermissionDenied");
    assert.equal((await outcome(teamOnly.history("team.a.b"))).code, "OK");
    const stream = await outcome(
      (async () => {
        for await (const _ of teamOnly.rpc.subscribe({ rooms: [{ room: "general" }] })) break;
      })(),
    );
    assert.equal(stream.code, "PermissionDenied");
    // Anyone may still write to an inbox.
    assert.equal((await outcome(teamOnly.publish("@bob", "hi bob"))).code, "OK");
  });

  test("lets an admin clear a room's history: new epoch, subscribers told, sequences restart", async ({ client, cleanup }) => {
    const p = PROTOCOLS[0];
    const admin = client("root", p, { admin: true });
    const reader = new Recorder(client("rita", p).subscribe(["cleared"]));
    cleanup(() => reader.subscription.close());
    await reader.subscribedTo("cleared");
    const first = await admin.publish("cleared", "before");
    await reader.until((r) => r.messages("cleared").length === 1, "first message");
    const cleared = await admin.rpc.clearHistory({ room: "cleared" });
    assert.notEqual(cleared.position?.epoch, first.epoch);
    await reader.until((r) => r.ofType("reset").length === 1, "the reset");
    assert.equal(reader.ofType("reset")[0]!.reason, "epoch_changed");
    assert.equal((await admin.history("cleared")).messages.length, 0);
    const next = await admin.publish("cleared", "after");
    assert.deepEqual([next.epoch, next.sequence], [cleared.position!.epoch, 1n]);
    await reader.until((r) => r.contents("cleared").includes("after"), "message of the new epoch");
    assert.deepEqual(reader.contents("cleared"), ["before", "after"]);
  });

  test("rate-limits one user's publishes with RESOURCE_EXHAUSTED and a retry hint", async ({ client }) => {
    const p = PROTOCOLS[0];
    const burst = client("speedy", p);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => outcome(burst.rpc.publish({ room: "fast", content: `m${i}` }))),
    );
    const limited = results.filter((r) => r.code === "ResourceExhausted");
    assert.ok(limited.length >= 2, JSON.stringify(results));
    assert.match(limited[0]!.message, /retry in \d+ ms/);
    assert.equal(limited[0]!.reason, "RATE_LIMITED");
    assert.ok(limited[0]!.retryAfterMs! > 0, "RetryInfo says how long to wait");
    // Another user is not affected.
    assert.equal((await outcome(client("calm", p).publish("fast", "ok"))).code, "OK");
  });
});
