import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { SubscribeResponseSchema, type SubscribeResponse } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { createSeqcastClient } from "../../src/client/index.js";
import { errorReason } from "../../src/client/retry.js";
import { SubscriptionState, type SubscriptionEvent } from "../../src/client/subscription.js";
import { describe, PROTOCOLS, pause, test, testToken, waitUntil, type ProtocolCase } from "../support/fixtures.js";

/**
 * Issue 13: causal order across rooms and private messages. Alice asks in
 * `general`; Bob, who read it, writes to Carol's inbox; Carol's `general`
 * lags (its message events are held at her transport), yet her application
 * sees the question before Bob's pointer.
 */

/** A transport that holds `room`'s message events of every Subscribe stream for `holdMs`: a slow link for one room. */
function laggingTransport(url: string, p: ProtocolCase, room: string, holdMs: number): Transport {
  const hold: Interceptor = (next) => async (request) => {
    const response = await next(request);
    if (!response.stream || request.method.name !== "Subscribe") return response;
    return { ...response, message: delayRoom(response.message as AsyncIterable<SubscribeResponse>, room, holdMs) } as typeof response;
  };
  return p.protocol === "grpc"
    ? createGrpcTransport({ baseUrl: url, interceptors: [hold] })
    : createConnectTransport({ baseUrl: url, httpVersion: p.httpVersion, interceptors: [hold] });
}

async function* delayRoom(source: AsyncIterable<SubscribeResponse>, room: string, holdMs: number): AsyncGenerator<SubscribeResponse> {
  const ready: SubscribeResponse[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  let failure: unknown;
  const put = (response: SubscribeResponse) => {
    ready.push(response);
    wake?.();
  };
  void (async () => {
    try {
      for await (const response of source) {
        const held = response.events.filter((e) => e.event.case === "message" && e.event.value.room === room);
        const rest = response.events.filter((e) => !held.includes(e));
        if (held.length > 0) setTimeout(() => put(create(SubscribeResponseSchema, { events: held })), holdMs);
        if (rest.length > 0) put(create(SubscribeResponseSchema, { events: rest }));
      }
    } catch (error) {
      failure = error;
    } finally {
      done = true;
      wake?.();
    }
  })();
  for (;;) {
    const next = ready.shift();
    if (next) {
      yield next;
      continue;
    }
    if (done) {
      if (failure) throw failure;
      return;
    }
    await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
  }
}

/** What Carol's application saw, in order: `room:content`, with `(late)` for a message released after the wait. */
function record(events: SubscriptionEvent[]) {
  return () =>
    events.flatMap((e) => (e.type === "message" ? [`${e.room}:${e.message.content}${e.unmetDependencies ? " (late)" : ""}`] : []));
}

for (const p of [PROTOCOLS[0], PROTOCOLS[1]]) {
  describe(`causal order over ${p.name}`, () => {
    test("Carol, whose general lags, sees Alice's question before Bob's pointer to it", async ({ broker, client, subscribe, cleanup }) => {
      const HOLD_MS = 1500;
      const carolClient = createSeqcastClient({ transport: laggingTransport(broker.url, p, "general", HOLD_MS), token: testToken("carol") });
      const carol = carolClient.subscribe(["general", "@carol"], { causalWaitMs: 10_000 });
      cleanup(() => carol.close());
      const events: SubscriptionEvent[] = [];
      carol.on((e) => events.push(e));
      const seen = record(events);
      await waitUntil(() => events.filter((e) => e.type === "subscribed").length === 2, "carol subscribed to both rooms");

      const bobClient = createSeqcastClient({ baseUrl: broker.url, token: testToken("bob"), protocol: p.protocol, httpVersion: p.httpVersion });
      const bob = bobClient.subscribe(["general"]);
      cleanup(() => bob.close());
      const bobSaw: string[] = [];
      bob.on((e) => e.type === "message" && bobSaw.push(e.message.content));
      await bob.waitFor(SubscriptionState.Connected);
      await pause(100);

      const question = await client("alice", p).publish("general", "what time is the standup?");
      await waitUntil(() => bobSaw.includes("what time is the standup?"), "bob read the question");
      await bobClient.publish("@carol", "@carol see Alice's question");

      await waitUntil(() => seen().length === 2, "carol's two messages", 5000);
      assert.deepEqual(seen(), ["general:what time is the standup?", "@carol:@carol see Alice's question"]);
      // Well before the held event arrived: the SDK fetched the question from history.
      const pointer = events.find((e) => e.type === "message" && e.room === "@carol");
      assert.ok(pointer?.type === "message");
      assert.deepEqual(
        pointer.message.dependencies.map((d) => [d.room, d.epoch, d.sequence]),
        [["general", question.epoch, question.sequence]],
        "the pointer carries Bob's position in general, and nothing of his inbox",
      );
      // The held event arrives later as a duplicate: dropped, each message exactly once.
      await pause(HOLD_MS + 300);
      assert.deepEqual(seen(), ["general:what time is the standup?", "@carol:@carol see Alice's question"]);
      // History carries the dependencies too.
      const history = await carolClient.history("@carol");
      assert.deepEqual(history.messages[0]!.dependencies.map((d) => [d.room, d.sequence]), [["general", question.sequence]]);
    });

    test("a dependency that never comes is released after the wait, marked; one in a room not held is ignored", async ({ client, subscribe }) => {
      const carol = subscribe("carol", ["general", "@carol"], p, { causalWaitMs: 400 });
      await carol.subscribedTo("general");
      await carol.subscribedTo("@carol");
      const general = await client("alice", p).publish("general", "hello");
      const bob = client("bob", p);
      // replyTo a message of an epoch that was cleared long ago, and one of a room Carol does not hold.
      await bob.publish("@carol", "about that old thing", { replyTo: { room: "general", epoch: "cleared-epoch", sequence: 3n } });
      await bob.publish("@carol", "about a room you do not read", { replyTo: { room: "elsewhere", epoch: general.epoch, sequence: 99n } });
      const events: SubscriptionEvent[] = carol.events;
      await carol.until((r) => r.messages("@carol").length === 2, "both inbox messages", 5000);
      const inbox = events.filter((e): e is Extract<SubscriptionEvent, { type: "message" }> => e.type === "message" && e.room === "@carol");
      assert.deepEqual(
        inbox.map((e) => [e.message.content, e.unmetDependencies?.map((d) => `${d.room}:${d.epoch}#${d.sequence}`)]),
        [
          ["about that old thing", ["general:cleared-epoch#3"]],
          ["about a room you do not read", undefined],
        ],
        "the first waited its bound and says so; the second, behind it in the room, waited only for it",
      );
    });

    test("the broker refuses malformed or too many dependencies with INVALID_ARGUMENT", async ({ client }) => {
      const alice = client("alice", p);
      const dep = (room: string, sequence = 1n) => ({ room, epoch: "e1", sequence });
      const cases = [
        Array.from({ length: 17 }, (_, i) => dep(`room${i}`)),
        [dep("not a room")],
        [dep("general", 0n)],
        [{ room: "general", epoch: "", sequence: 1n }],
      ];
      for (const dependencies of cases) {
        const error = await alice.rpc.publish({ room: "general", content: "x", dependencies }).then(
          () => assert.fail("accepted"),
          (e: unknown) => ConnectError.from(e),
        );
        assert.equal(error.code, Code.InvalidArgument);
        assert.equal(errorReason(error), "INVALID_REQUEST");
        assert.match(error.rawMessage, /^dependencies/);
      }
      const ok = await alice.rpc.publish({ room: "general", content: "x", dependencies: Array.from({ length: 16 }, (_, i) => dep(`room${i}`)) });
      assert.equal(ok.position?.sequence, 1n);
    });
  });
}
