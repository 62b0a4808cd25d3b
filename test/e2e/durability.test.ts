import assert from "node:assert/strict";
import type { SubscribeEvent } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { test, describe, PROTOCOLS, clientFor, Recorder, startCuttableProxy, waitUntil, pause } from "../support/fixtures.js";

const grpc = PROTOCOLS[0];

describe("idempotent publish, acks and redelivery", () => {
  test.override({ brokerConfig: { ackDeadlineMs: 300, historySize: 10_000 } });

  test("stores a retried publish once and returns the original position", async ({ client }) => {
    const c = client("alice", grpc);
    const first = await c.publish("idem", "hello", { clientMessageId: "msg-1" });
    const retry = await c.publish("idem", "hello", { clientMessageId: "msg-1" });
    const other = await client("bob", grpc).publish("idem", "hello", { clientMessageId: "msg-1" });
    assert.deepEqual([first.duplicate, retry.duplicate, other.duplicate], [false, true, false]);
    assert.deepEqual([retry.sequence, retry.id, retry.epoch], [first.sequence, first.id, first.epoch]);
    assert.equal(other.sequence, 2n, "the same id from another sender is another message");
    assert.deepEqual((await c.history("idem")).messages.map((m) => m.sender), ["alice", "bob"]);
  });

  test("resumes a durable subscriber after its last ack when it comes back without a position", async ({ client, cleanup }) => {
    const room = "durable";
    const alice = client("alice", grpc);
    const pub = client("pub", grpc);
    const auto = new Recorder(alice.subscribe([room], { subscriber: "phone" }));
    const manual = new Recorder(alice.subscribe([room], { subscriber: "tablet", ack: "manual" }));
    await Promise.all([auto.subscribedTo(room), manual.subscribedTo(room)]);
    for (let i = 1; i <= 5; i++) await pub.publish(room, `m${i}`);
    await auto.until((r) => r.messages(room).length === 5, "5 messages (auto)");
    await manual.until((r) => r.messages(room).length === 5, "5 messages (manual)");
    manual.subscription.ack(room, 2n);
    await Promise.all([auto.subscription.close(), manual.subscription.close()]);
    for (let i = 6; i <= 7; i++) await pub.publish(room, `m${i}`);

    // New subscriptions (a restarted app): no positions of their own.
    const autoBack = new Recorder(alice.subscribe([room], { subscriber: "phone" }));
    const manualBack = new Recorder(alice.subscribe([room], { subscriber: "tablet", ack: "manual" }));
    cleanup(() => autoBack.subscription.close()); cleanup(() => manualBack.subscription.close());
    await autoBack.until((r) => r.messages(room).length === 2, "the 2 unacked (auto)");
    await manualBack.until((r) => r.messages(room).length === 5, "the 5 unacked (manual)");
    assert.deepEqual(autoBack.contents(room), ["m6", "m7"]);
    assert.deepEqual(manualBack.contents(room), ["m3", "m4", "m5", "m6", "m7"]);
    assert.equal(autoBack.ofType("subscribed")[0]!.recovered, true);
    // A subscription without a name starts from now.
    const anonymous = new Recorder(alice.subscribe([room]));
    cleanup(() => anonymous.subscription.close());
    await anonymous.subscribedTo(room);
    await pause(100);
    assert.equal(anonymous.messages(room).length, 0);
  });

  test("redelivers unacknowledged messages on the live stream after the deadline, and stops once acked", async ({ client, cleanup }) => {
    const room = "redeliver";
    const c = client("rory", grpc);
    const controller = new AbortController();
    cleanup(async () => controller.abort());
    const seen: number[] = [];
    let sessionId = "";
    const reading = (async () => {
      try {
        for await (const response of c.rpc.subscribe({ rooms: [{ room }], subscriber: "raw" }, { signal: controller.signal }))
          for (const e of response.events as SubscribeEvent[]) {
            if (e.event.case === "sessionStarted") sessionId = e.event.value.sessionId;
            if (e.event.case === "message") seen.push(Number(e.event.value.sequence));
          }
      } catch {
        // aborted at the end of the test
      }
    })();
    await waitUntil(() => sessionId !== "", "session");
    await pause(50);
    const pub = client("pub", grpc);
    for (let i = 1; i <= 3; i++) await pub.publish(room, `r${i}`);
    await waitUntil(() => seen.filter((s) => s === 1).length >= 2, "a redelivery of 1", 5000);
    assert.deepEqual(seen.slice(0, 3), [1, 2, 3]);
    const epoch = (await pub.history(room)).epoch;
    await c.rpc.ack({ sessionId, acks: [{ room, position: { epoch, sequence: 3n } }] });
    const count = seen.length;
    await pause(900);
    assert.equal(seen.length, count, "nothing redelivered after the ack");
    controller.abort();
    await reading;
  });

  test("the SDK hides redeliveries: the application sees each message once", async ({ client, cleanup }) => {
    const room = "hidden";
    const rec = new Recorder(client("hal", grpc).subscribe([room], { subscriber: "lazy", ack: "manual" }));
    cleanup(() => rec.subscription.close());
    await rec.subscribedTo(room);
    const pub = client("pub", grpc);
    for (let i = 1; i <= 3; i++) await pub.publish(room, `h${i}`);
    await pause(1000); // three deadlines pass without an ack
    assert.deepEqual(rec.sequences(room), [1, 2, 3]);
  });

  test("rejects Ack on a session without a subscriber name, and for rooms it does not hold", async ({ client, cleanup }) => {
    const c = client("nina", grpc);
    const plain = c.subscribe(["x"]);
    const durable = c.subscribe(["x"], { subscriber: "d" });
    cleanup(() => plain.close()); cleanup(() => durable.close());
    await Promise.all([new Recorder(plain).subscribedTo("x"), new Recorder(durable).subscribedTo("x")]);
    await waitUntil(() => !!plain.sessionId && !!durable.sessionId, "sessions");
    const ack = (sessionId: string, room: string) =>
      c.rpc.ack({ sessionId, acks: [{ room, position: { epoch: "e", sequence: 1n } }] });
    await assert.rejects(ack(plain.sessionId!, "x"), /not durable/);
    await assert.rejects(ack(durable.sessionId!, "y"), /does not hold/);
    await assert.rejects(
      c.rpc.subscribe({ rooms: [], subscriber: "bad name" })[Symbol.asyncIterator]().next(),
      /not a subscriber name/,
    );
  });

  test("retries publishes through dropped connections: each stored once, in call order", async ({ broker, client, cleanup }) => {
    const room = "retry-fifo";
    const proxy = await startCuttableProxy(broker.port);
    cleanup(() => proxy.close());
    const pub = clientFor(proxy.url, "fifo", grpc);
    const results = Array.from({ length: 300 }, (_, i) => pub.publish(room, `f${i}`));
    for (let cut = 0; cut < 5; cut++) {
      await pause(30);
      proxy.cut();
    }
    const positions = await Promise.all(results);
    assert.ok(proxy.cuts >= 5);
    const history = await client("check", grpc).history(room, { limit: 1000 });
    assert.deepEqual(
      history.messages.map((m) => m.content),
      Array.from({ length: 300 }, (_, i) => `f${i}`),
      "every message once, in the order publish() was called",
    );
    assert.deepEqual(positions.map((p) => p.sequence), Array.from({ length: 300 }, (_, i) => BigInt(i + 1)));
  });
});
