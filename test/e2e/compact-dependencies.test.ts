import assert from "node:assert/strict";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { SubscribeRequestSchema } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import type { Message } from "../../gen/es/seqcast/v1/types_pb.js";
import type { SeqcastClient } from "../../src/client/client.js";
import { createSeqcastClient } from "../../src/client/index.js";
import { describe, PROTOCOLS, Recorder, test, testToken, waitUntil, type ProtocolCase } from "../support/fixtures.js";

/**
 * Compact causal dependencies (SubscribeRequest.compact_dependencies,
 * Message.dependency_refs): what a stream that asked for them carries on
 * the wire, message by message, and that the SDK (which asks) hands its
 * application every list exactly as published.
 */

type Rpc = SeqcastClient["rpc"];
type Dep = { room: string; epoch: string; sequence: bigint };
const dep = (room: string, sequence: bigint): Dep => ({ room, epoch: "e1", sequence });
const A1 = dep("a", 1n), A2 = dep("a", 2n), B1 = dep("b", 1n), C1 = dep("c", 1n), X1 = dep("x", 1n);

/** What the publisher sends, in order: content and dependencies. */
const PUBLISHED: Array<[string, Dep[]]> = [
  ["m1", [A1, B1, C1]], // first of the room on a stream: whole
  ["m2", [A1, B1, C1]], // the same context: one flag
  ["m3", [B1, C1, A2]], // one moved (and the order with it): two by index, one given
  ["m4", []], // none
  ["m5", [A2]], // the message before had none: whole
  ["m6", [X1, A2]], // one shared, one new
  ["m7", [X1]], // every position by index
  ["m8", [X1, A2]], // back to m6's list, but m7 came between: one by index, one given
  ["m9", [X1, A2]], // the same again: one flag
];

const show = (d: Dep) => `${d.room}${d.sequence}`;

/** A Subscribe stream read raw: the messages exactly as the wire brought them. */
function rawStream(rpc: Rpc, request: MessageInitShape<typeof SubscribeRequestSchema>) {
  const messages: Message[] = [];
  const abort = new AbortController();
  const done = (async () => {
    for await (const response of rpc.subscribe(request, { signal: abort.signal }))
      for (const event of response.events) if (event.event.case === "message") messages.push(event.event.value);
  })().catch(() => {});
  return {
    messages,
    /** `content refs explicit…` per message. */
    wire: () =>
      messages.map((m) => [m.content, m.sameDependencies ? "same" : [...m.dependencyRefs].join(",") || "-", ...m.dependencies.map(show)].join(" ")),
    close: async () => {
      abort.abort();
      await done;
    },
  };
}

const JSON_CONNECT = { name: "connect (JSON)", protocol: "connect", httpVersion: "1.1" } as const;

for (const p of [...PROTOCOLS, JSON_CONNECT]) {
  describe(`compact dependencies over ${p.name}`, () => {
    test("a stream that asks gets refs into the previous message's list; others, history and the SDK see lists whole", async ({
      broker,
      client,
      cleanup,
    }) => {
      const clientOf = (user: string): SeqcastClient =>
        p === JSON_CONNECT
          ? createSeqcastClient({
              transport: createConnectTransport({ baseUrl: broker.url, httpVersion: "1.1", useBinaryFormat: false }),
              token: testToken(user),
            })
          : client(user, p as ProtocolCase);
      const rpc = (user: string) => clientOf(user).rpc;
      const compact = rawStream(rpc("carol"), { rooms: [{ room: "feed" }], compactDependencies: true });
      const whole = rawStream(rpc("dave"), { rooms: [{ room: "feed" }] });
      // A filter that removes m2: m3 does not follow the message before it on that stream.
      const filtered = rawStream(rpc("erin"), { rooms: [{ room: "feed", filter: 'content != "m2"' }], compactDependencies: true });
      cleanup(() => Promise.all([compact.close(), whole.close(), filtered.close()]));
      const sdk = new Recorder(clientOf("frank").subscribe(["feed"]));
      cleanup(() => sdk.subscription.close());
      await sdk.subscribedTo("feed");
      await waitUntil(async () => (await rpc("alice").getPresence({ room: "feed" })).sessionCount >= 4, "every stream joined");

      const alice = rpc("alice");
      for (const [content, dependencies] of PUBLISHED) await alice.publish({ room: "feed", content, dependencies });
      await waitUntil(() => compact.messages.length === 9 && whole.messages.length === 9 && filtered.messages.length === 8, "every stream's messages");

      assert.deepEqual(compact.wire(), [
        "m1 - a1 b1 c1",
        "m2 same",
        "m3 1,2,255 a2",
        "m4 -",
        "m5 - a2",
        "m6 255,0 x1",
        "m7 0",
        "m8 0,255 a2",
        "m9 same",
      ]);
      assert.deepEqual(whole.wire(), PUBLISHED.map(([content, deps]) => [content, "-", ...deps.map(show)].join(" ")), "not asked: whole");
      assert.deepEqual(filtered.wire().slice(0, 3), ["m1 - a1 b1 c1", "m3 - b1 c1 a2", "m4 -"], "after a gap: whole");

      // A stream that resumes from m2 gets the replay the same way: whole first, then refs.
      const resumed = rawStream(rpc("gina"), { rooms: [{ room: "feed", since: { epoch: compact.messages[0]!.epoch, sequence: 2n } }], compactDependencies: true });
      cleanup(() => resumed.close());
      await waitUntil(() => resumed.messages.length === 7, "the replay");
      assert.deepEqual(resumed.wire(), ["m3 - b1 c1 a2", "m4 -", "m5 - a2", "m6 255,0 x1", "m7 0", "m8 0,255 a2", "m9 same"]);

      await sdk.until((r) => r.messages("feed").length === 9, "the SDK's messages");
      assert.deepEqual(
        sdk.messages("feed").map((m) => [m.content, m.dependencies.map(show), m.dependencyRefs.length, m.sameDependencies]),
        PUBLISHED.map(([content, deps]) => [content, deps.map(show), 0, false]),
        "the SDK rebuilds every list as published",
      );
      const history = await alice.getHistory({ room: "feed" });
      assert.deepEqual(
        history.messages.map((m) => [m.content, m.dependencies.map(show), m.dependencyRefs.length, m.sameDependencies]),
        PUBLISHED.map(([content, deps]) => [content, deps.map(show), 0, false]),
        "history is never compact",
      );
    });
  });
}
