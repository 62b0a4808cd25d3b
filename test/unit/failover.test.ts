import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { createSeqcastClient } from "../../src/client/index.js";
import { createFailoverTransport } from "../../src/client/failover.js";
import { PubSubService, SubscribeEventSchema, type SubscribeRequest, type SubscribeResponse } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { MessageSchema } from "../../gen/es/seqcast/v1/types_pb.js";
import { testToken } from "../support/tokens.js";
import { waitUntil } from "../support/wait.js";

/**
 * The SDK with several broker URLs: in-memory fake nodes (Connect routers in
 * this process) that fail on cue.
 */
class FakeNode {
  publishes: string[] = [];
  subscribes: SubscribeRequest[] = [];
  /** Thrown by the next Publish calls, if set. */
  publishError: ConnectError | undefined;
  /** Events of each Subscribe, then the error that ends it (undefined: stays open). */
  streams: Array<{ events: SubscribeResponse["events"]; end?: ConnectError }> = [];

  constructor(readonly name: string) {}

  transport() {
    return createRouterTransport((router) =>
      router.service(PubSubService, {
        publish: (request) => {
          if (this.publishError) throw this.publishError;
          this.publishes.push(request.clientMessageId);
          return { id: `${this.name}-${this.publishes.length}`, position: { epoch: "e", sequence: BigInt(this.publishes.length) }, duplicate: false };
        },
        subscribe: async function* (this: FakeNode, request: SubscribeRequest) {
          this.subscribes.push(request);
          const script = this.streams.shift() ?? { events: [] };
          if (script.events.length > 0) yield { $typeName: "seqcast.v1.SubscribeResponse", events: script.events } as SubscribeResponse;
          if (script.end) throw script.end;
          await new Promise(() => {});
        }.bind(this),
      }),
    );
  }
}

const started = (id: string) =>
  create(SubscribeEventSchema, { event: { case: "sessionStarted", value: { sessionId: id, user: "u", heartbeatIntervalMs: 0 } } });
const subscribed = (sequence: bigint, recovered: boolean) =>
  create(SubscribeEventSchema, { event: { case: "subscribed", value: { room: "r", position: { epoch: "e", sequence }, recovered } } });
const message = (sequence: number) =>
  create(SubscribeEventSchema, {
    event: { case: "message", value: create(MessageSchema, { room: "r", epoch: "e", sequence: BigInt(sequence), content: `m${sequence}` }) },
  });

function clientOn(...nodes: FakeNode[]) {
  const transport = createFailoverTransport(nodes.map((n) => n.transport()));
  const client = createSeqcastClient({ transport, token: testToken("u"), publishBackoff: { baseMs: 1, maxMs: 5 } });
  return { client, transport };
}

describe("SDK with several broker URLs", () => {
  it("moves to the next node when one is unavailable, and retries the publish there with the same client message id", async () => {
    const [a, b] = [new FakeNode("a"), new FakeNode("b")];
    a.publishError = new ConnectError("connect ECONNREFUSED", Code.Unavailable);
    const { client, transport } = clientOn(a, b);
    const result = await client.publish("r", "hello", { clientMessageId: "cm-1" });
    assert.equal(result.id, "b-1");
    assert.deepEqual(b.publishes, ["cm-1"]);
    assert.equal(transport.current, 1);
    // It stays there while that node works.
    await client.publish("r", "again");
    assert.equal(b.publishes.length, 2);
  });

  it("stays on a node that refuses the request itself (another node would refuse it too)", async () => {
    const [a, b] = [new FakeNode("a"), new FakeNode("b")];
    a.publishError = new ConnectError("content: must not be empty", Code.InvalidArgument);
    const { client, transport } = clientOn(a, b);
    await assert.rejects(client.publish("r", ""), /must not be empty/);
    assert.equal(transport.current, 0);
    assert.deepEqual(b.publishes, []);
  });

  it("resumes a subscription on the next node from its last delivered position", async () => {
    const [a, b] = [new FakeNode("a"), new FakeNode("b")];
    a.streams = [{ events: [started("s1"), subscribed(0n, false), message(1), message(2)], end: new ConnectError("socket hang up", Code.Unavailable) }];
    b.streams = [{ events: [started("s2"), subscribed(2n, true), message(3)] }];
    const { client, transport } = clientOn(a, b);
    const sub = client.subscribe(["r"], { backoff: { baseMs: 1, maxMs: 5 } });
    const delivered: string[] = [];
    sub.on((e) => e.type === "message" && delivered.push(e.message.content));
    await waitUntil(() => delivered.length === 3, "three messages");
    assert.deepEqual(delivered, ["m1", "m2", "m3"]);
    assert.equal(transport.current, 1);
    assert.deepEqual(b.subscribes.map((r) => r.rooms.map((room) => [room.room, room.since?.sequence])), [[["r", 2n]]]);
    assert.equal(b.subscribes[0]!.previousSessionId, "s1");
    await sub.close();
  });

  it("wraps around to the first node", async () => {
    const [a, b] = [new FakeNode("a"), new FakeNode("b")];
    const { client, transport } = clientOn(a, b);
    b.publishError = new ConnectError("shutting down", Code.Unavailable);
    a.publishError = new ConnectError("shutting down", Code.Unavailable);
    await assert.rejects(createSeqcastClient({ transport, token: testToken("u"), maxPublishAttempts: 2, publishBackoff: { baseMs: 1, maxMs: 1 } }).publish("r", "x"));
    assert.equal(transport.current, 0, "a then b failed: back to a");
    a.publishError = undefined;
    assert.equal((await client.publish("r", "y")).id, "a-1");
  });

  it("needs a URL", () => {
    assert.throws(() => createSeqcastClient({ token: "t" }), /set baseUrl \(or baseUrls, or transport\)/);
  });
});
