import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { PubSubService, type PublishStreamRequest, type PublishStreamRequestSchema } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { withToken } from "../../src/client/auth.js";
import { errorReason } from "../../src/client/retry.js";
import type { SubscribeEvent } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import type { Transport } from "@connectrpc/connect";
import { test, describe, PROTOCOLS, Recorder, testToken } from "../support/fixtures.js";
import { testAuthenticate } from "../support/tokens.js";
import { startServer } from "../../src/server/server.js";
import { defaultBrokerConfig } from "../../src/broker/config.js";
import { createMemoryEngine } from "../../src/engine/memory.js";

const grpc = PROTOCOLS[0];

describe("stream flow control", () => {
  // The stalled reader below reads its final status only after the healthy one got everything: a long grace.
  test.override({ brokerConfig: { heartbeatIntervalMs: 100, sessionQueueLimit: 200, slowConsumerGraceMs: 60_000 } });

  test("sends heartbeats on an idle stream", async ({ client }) => {
    const c = client("idle", grpc);
    const controller = new AbortController();
    let heartbeats = 0;
    const started = Date.now();
    try {
      for await (const response of c.rpc.subscribe({ rooms: [{ room: "quiet" }] }, { signal: controller.signal })) {
        heartbeats += response.events.filter((e) => e.event.case === "heartbeat").length;
        if (heartbeats >= 3) break;
      }
    } finally {
      controller.abort();
    }
    assert.equal(heartbeats, 3);
    assert.ok(Date.now() - started >= 200, "heartbeats only after the stream was idle");
  });

  test("grants each client 1 MiB flow-control windows, per stream and per connection", async ({ broker }) => {
    const http2 = await import("node:http2");
    const session = http2.connect(broker.url);
    try {
      // The SETTINGS the broker sent (per stream) and its WINDOW_UPDATE on stream 0 (the connection) both arrive after the preface.
      await new Promise<void>((resolve, reject) => {
        session.once("remoteSettings", () => resolve());
        session.once("error", reject);
      });
      assert.equal(session.remoteSettings.initialWindowSize, 1024 * 1024);
      await new Promise<void>((resolve) => session.ping(() => resolve()));
      assert.equal(session.state.remoteWindowSize, 1024 * 1024, "the connection's window");
    } finally {
      session.close();
    }
  });

  test("cuts off a subscriber that stops reading with RESOURCE_EXHAUSTED, leaving other streams intact", async ({ client }) => {
    const room = "firehose";
    const stalled = client("stalled", grpc);
    const stream = stalled.rpc.subscribe({ rooms: [{ room }] })[Symbol.asyncIterator]();
    // Read until subscribed, then stop reading.
    for (;;) {
      const { value } = await stream.next();
      if (value?.events.some((e: SubscribeEvent) => e.event.case === "subscribed")) break;
    }
    const healthy = new Recorder(client("healthy", grpc).subscribe([room]));
    await healthy.subscribedTo(room);
    const pub = client("pub", grpc);
    const body = "x".repeat(2048);
    for (let i = 0; i < 60; i++) await Promise.all(Array.from({ length: 25 }, () => pub.publish(room, body)));
    await healthy.until((r) => r.messages(room).length === 1500, "all 1500 at the healthy subscriber", 30_000);
    assert.deepEqual(healthy.sequences(room), Array.from({ length: 1500 }, (_, i) => i + 1));
    // The stalled reader now drains what the transport buffered, then meets the error.
    let error: ConnectError | undefined;
    try {
      for (let r = await stream.next(); !r.done; r = await stream.next());
    } catch (e) {
      error = ConnectError.from(e);
    }
    assert.equal(error?.code, Code.ResourceExhausted);
    assert.match(error!.rawMessage, /too slow/);
    assert.equal(errorReason(error), "SLOW_CONSUMER");
    await healthy.subscription.close();
  });

});

describe("publishers at a slow reader's pace", () => {
  // A reader counts as stalled (no longer waited for) only after 10 s without taking anything: a
  // test process starved of CPU for half a second by its neighbours still reads, only late.
  test.override({ brokerConfig: { sessionQueueLimit: 200, readerStallMs: 10_000 } });

  // Bidirectional streaming: gRPC (the broker's own HTTP/2 path) and Connect over HTTP/2 (connect-node).
  for (const [name, transport] of TRANSPORTS)
    test(`a PublishStream publisher (${name}) goes at the pace of a subscriber that reads slower, which is not cut off`, async ({ broker }) => {
      await publishAtReadersPace(broker.url, transport);
    });

  // While the broker verifies the publisher's token, the client may already send a whole HTTP/2 window
  // (1 MiB: here about 1,000 messages); read all at once, they once filled the reader's queue of 200 and cut it off.
  for (const [name, transport] of TRANSPORTS)
    test(`a PublishStream publisher (${name}) whose token takes 300 ms to verify does not outrun the slow reader meanwhile`, async () => {
      const verify = await testAuthenticate();
      const server = await startServer({
        config: { ...defaultBrokerConfig, presenceGraceMs: 300, sessionQueueLimit: 200, readerStallMs: 10_000 },
        engine: createMemoryEngine,
        port: 0,
        authenticate: async (header) => {
          const identity = await verify(header);
          if (identity.user === "fast") await sleep(300);
          return identity;
        },
      });
      try {
        await publishAtReadersPace(server.url, transport);
      } finally {
        await server.close();
      }
    });
});

const TRANSPORTS = [
  ["grpc", (url: string) => createGrpcTransport({ baseUrl: url })],
  ["connect (HTTP/2)", (url: string) => createConnectTransport({ baseUrl: url, httpVersion: "2" })],
] as const;

/** 2,000 messages of 1 KB on one PublishStream ("fast"), read by one subscriber ("slow") that naps 20 ms per response: all delivered, in order, nobody cut off. */
async function publishAtReadersPace(url: string, transport: (url: string) => Transport): Promise<void> {
  const room = "steady";
  const count = 2000;
  // Reads one response, then naps 20 ms: far slower than the publisher, and its queue holds 200 events.
  const reader = createClient(PubSubService, withToken(transport(url), testToken("slow")));
  const controller = new AbortController();
  const sequences: number[] = [];
  let subscribed!: () => void;
  const isSubscribed = new Promise<void>((resolve) => (subscribed = resolve));
  const reading = (async (): Promise<unknown> => {
    for await (const response of reader.subscribe({ rooms: [{ room }] }, { signal: controller.signal })) {
      for (const e of response.events) {
        if (e.event.case === "subscribed") subscribed();
        if (e.event.case === "message") sequences.push(Number(e.event.value.sequence));
      }
      if (sequences.length === count) return undefined;
      await sleep(20);
    }
    return new Error("the stream ended early");
  })().catch((error: unknown) => error);
  await isSubscribed;
  const publisher = createClient(PubSubService, withToken(transport(url), testToken("fast")));
  async function* requests(): AsyncGenerator<MessageInitShape<typeof PublishStreamRequestSchema>> {
    for (let i = 0; i < count; i += 50)
      yield { messages: Array.from({ length: 50 }, (_, k) => ({ room, content: `m${i + k} ${"x".repeat(1000)}`, clientMessageId: `m${i + k}` })) };
  }
  let published = 0;
  for await (const response of publisher.publishStream(requests() as AsyncIterable<PublishStreamRequest>))
    published += response.results.filter((r) => r.result.case === "published").length;
  // Cut off as a slow consumer, the reader would have RESOURCE_EXHAUSTED here.
  const failure = await reading;
  controller.abort();
  assert.equal(failure, undefined);
  assert.equal(published, count);
  assert.deepEqual(sequences, Array.from({ length: count }, (_, i) => i + 1));
}

describe("codecs", () => {

  test("streams the same events to a Connect JSON client as to binary ones", async ({ broker, client }) => {
    const { createConnectTransport } = await import("@connectrpc/connect-node");
    const { createSeqcastClient } = await import("../../src/client/index.js");
    const json = createSeqcastClient({
      baseUrl: broker.url,
      token: testToken("jason"),
      transport: createConnectTransport({ baseUrl: broker.url, httpVersion: "1.1", useBinaryFormat: false }),
    });
    const jsonRec = new Recorder(json.subscribe(["codec"]));
    const binRec = new Recorder(client("bin", grpc).subscribe(["codec"]));
    await Promise.all([jsonRec.subscribedTo("codec"), binRec.subscribedTo("codec")]);
    await json.publish("codec", "héllo", { attributes: { k: "v" }, payload: new Uint8Array([7]) });
    for (const r of [jsonRec, binRec]) await r.until((x) => x.messages("codec").length === 1, "the message");
    const [a, b] = [jsonRec.messages("codec")[0]!, binRec.messages("codec")[0]!];
    assert.deepEqual(
      [a.id, a.sequence, a.content, a.sender, a.attributes, [...a.payload], a.epoch],
      [b.id, b.sequence, b.content, b.sender, b.attributes, [...b.payload], b.epoch],
    );
    assert.equal(a.content, "héllo");
    await Promise.all([jsonRec.subscription.close(), binRec.subscription.close()]);
  });
});
