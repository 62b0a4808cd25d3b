import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { PubSubService, type PublishRequestSchema, type PublishResult, type PublishStreamRequest } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { withToken } from "../../src/client/auth.js";
import { errorReason } from "../../src/client/retry.js";
import { describe, PROTOCOLS, test, testToken } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

/** An async iterable of requests fed by hand, so a test interleaves sends and receives. */
function pushable<T>() {
  const items: T[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  return {
    push(item: T) {
      items.push(item);
      wake?.();
    },
    end() {
      done = true;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (items.length > 0) yield items.shift()!;
        else if (done) return;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

const message = (room: string, content: string, clientMessageId = content): MessageInitShape<typeof PublishRequestSchema> => ({ room, content, clientMessageId });

/** Bidirectional streaming needs HTTP/2: gRPC, and the Connect protocol over HTTP/2. */
const STREAMING = [
  { name: "grpc", transport: (url: string) => createGrpcTransport({ baseUrl: url }) },
  { name: "connect (HTTP/2)", transport: (url: string) => createConnectTransport({ baseUrl: url, httpVersion: "2" }) },
];

for (const t of STREAMING) {
  describe(`PublishStream over ${t.name}`, () => {
    test.override({ brokerConfig: { publishRate: 20, publishBurst: 400, historySize: 10_000 } });
    const rpcFor = (url: string, user: string) => createClient(PubSubService, withToken(t.transport(url), testToken(user)));

    test("sequences one publisher's messages in the order sent, results in that order, errors per message", async ({ broker, client }) => {
      const rpc = rpcFor(broker.url, "streamer");
      const input = pushable<Partial<PublishStreamRequest>>();
      const results: PublishResult[] = [];
      const reading = (async () => {
        for await (const response of rpc.publishStream(input as AsyncIterable<PublishStreamRequest>)) results.push(...response.results);
      })();
      // 300 messages over two rooms, several per stream message, with two bad ones in the middle.
      const sent: string[] = [];
      for (let i = 0; i < 150; i++) {
        const batch = [message(i % 2 ? "odd" : "even", `m${i}`)];
        if (i === 70) batch.push(message("no good", "bad-room"));
        if (i === 71) batch.push({ room: "even", content: "", clientMessageId: "empty" });
        batch.push(message(i % 2 ? "odd" : "even", `n${i}`));
        sent.push(...batch.map((m) => m.clientMessageId!));
        input.push({ messages: batch } as Partial<PublishStreamRequest>);
      }
      input.end();
      await reading;
      assert.deepEqual(results.map((r) => r.clientMessageId), sent, "one result per message, in the order sent");
      const failed = results.filter((r) => r.result.case === "error");
      assert.deepEqual(
        failed.map((r) => r.result.case === "error" && [r.clientMessageId, r.result.value.code, r.result.value.reason]),
        [
          ["bad-room", Code.InvalidArgument, "INVALID_ROOM"],
          ["empty", Code.InvalidArgument, "INVALID_MESSAGE"],
        ],
      );
      for (const room of ["even", "odd"]) {
        const history = await client("reader").history(room, { limit: 1000 });
        const expected = sent.filter((id) => id !== "bad-room" && id !== "empty" && Number(id.slice(1)) % 2 === (room === "odd" ? 1 : 0));
        assert.deepEqual(history.messages.map((m) => m.content), expected, `${room}: in the order sent`);
        assert.deepEqual(history.messages.map((m) => Number(m.sequence)), expected.map((_, i) => i + 1));
      }
      const positions = results.flatMap((r) => (r.result.case === "published" ? [r.result.value.position!.sequence] : []));
      assert.equal(positions.length, 300);
    });

    test("recognises resent messages as duplicates and keeps a rate-limited one's error in its result", async ({ broker, client }) => {
      const rpc = rpcFor(broker.url, "retrier");
      const first = pushable<Partial<PublishStreamRequest>>();
      const firstResults: PublishResult[] = [];
      const reading = (async () => {
        for await (const r of rpc.publishStream(first as AsyncIterable<PublishStreamRequest>)) firstResults.push(...r.results);
      })();
      first.push({ messages: [message("dup", "a"), message("dup", "b")] } as Partial<PublishStreamRequest>);
      first.end();
      await reading;
      // A client that lost its stream resends what it is unsure of, with the same ids.
      const again = pushable<Partial<PublishStreamRequest>>();
      const againResults: PublishResult[] = [];
      const rereading = (async () => {
        for await (const r of rpc.publishStream(again as AsyncIterable<PublishStreamRequest>)) againResults.push(...r.results);
      })();
      again.push({ messages: [message("dup", "a"), message("dup", "b"), message("dup", "c")] } as Partial<PublishStreamRequest>);
      again.end();
      await rereading;
      const view = (r: PublishResult) => (r.result.case === "published" ? [r.clientMessageId, Number(r.result.value.position!.sequence), r.result.value.duplicate] : []);
      assert.deepEqual(firstResults.map(view), [["a", 1, false], ["b", 2, false]]);
      assert.deepEqual(againResults.map(view), [["a", 1, true], ["b", 2, true], ["c", 3, false]]);
      assert.deepEqual((await client("r").history("dup")).messages.map((m) => m.content), ["a", "b", "c"]);
      // Past the burst the rate limit answers per message, with a retry hint, and the stream goes on.
      const flood = pushable<Partial<PublishStreamRequest>>();
      const floodResults: PublishResult[] = [];
      const flooding = (async () => {
        for await (const r of rpc.publishStream(flood as AsyncIterable<PublishStreamRequest>)) floodResults.push(...r.results);
      })();
      flood.push({ messages: Array.from({ length: 500 }, (_, i) => message("flood", `f${i}`)) } as Partial<PublishStreamRequest>);
      flood.end();
      await flooding;
      const limited = floodResults.filter((r) => r.result.case === "error");
      assert.ok(limited.length > 0 && limited.length < 500, `${limited.length} limited`);
      const error = limited[0]!.result.case === "error" ? limited[0]!.result.value : undefined;
      assert.equal(error?.reason, "RATE_LIMITED");
      assert.ok(error!.retryAfterMs > 0);
    });

    test("a cancelled stream stores each received message once, gapless, and the broker carries on", async ({ broker, client }) => {
      const rpc = rpcFor(broker.url, "canceller");
      const input = pushable<Partial<PublishStreamRequest>>();
      const abort = new AbortController();
      const results: PublishResult[] = [];
      const reading = (async () => {
        for await (const r of rpc.publishStream(input as AsyncIterable<PublishStreamRequest>, { signal: abort.signal })) {
          results.push(...r.results);
          if (results.length >= 50) abort.abort();
        }
      })();
      for (let i = 0; i < 200; i++) input.push({ messages: [message("cancelled", `c${i}`)] } as Partial<PublishStreamRequest>);
      await assert.rejects(reading, (e: unknown) => ConnectError.from(e).code === Code.Canceled);
      const history = await client("r").history("cancelled", { limit: 1000 });
      const contents = history.messages.map((m) => m.content);
      assert.ok(contents.length >= 50, `at least the ${results.length} acknowledged are stored`);
      assert.deepEqual(contents, contents.map((_, i) => `c${i}`), "a prefix of what was sent, each once, in order");
      assert.equal((await client("after").publish("cancelled", "still serving")).sequence, BigInt(contents.length + 1));
    });

    test("on shutdown ends an open stream with UNAVAILABLE (SHUTTING_DOWN), after the results of what it sent", async ({ broker }) => {
      const rpc = rpcFor(broker.url, "closer");
      const input = pushable<Partial<PublishStreamRequest>>();
      const results: PublishResult[] = [];
      const reading = (async () => {
        for await (const r of rpc.publishStream(input as AsyncIterable<PublishStreamRequest>)) results.push(...r.results);
      })();
      const sent = Array.from({ length: 20 }, (_, i) => `s${i}`);
      for (const id of sent) input.push({ messages: [message("closing", id)] } as Partial<PublishStreamRequest>);
      await waitUntil(() => results.length === sent.length, () => `${results.length} of ${sent.length} results`);
      // The client never half-closes: the broker must end the call itself, with a status the SDK retries elsewhere.
      const closed = broker.close();
      await assert.rejects(reading, (e: unknown) => ConnectError.from(e).code === Code.Unavailable && errorReason(e) === "SHUTTING_DOWN");
      await closed;
      assert.deepEqual(results.map((r) => r.clientMessageId), sent);
      assert.ok(results.every((r) => r.result.case === "published"));
    });

    test("refuses a stream without a valid token", async ({ broker }) => {
      const rpc = createClient(PubSubService, t.transport(broker.url));
      const input = pushable<Partial<PublishStreamRequest>>();
      input.push({ messages: [message("x", "y")] } as Partial<PublishStreamRequest>);
      input.end();
      await assert.rejects(
        (async () => {
          for await (const _ of rpc.publishStream(input as AsyncIterable<PublishStreamRequest>));
        })(),
        (e: unknown) => ConnectError.from(e).code === Code.Unauthenticated,
      );
    });
  });
}

for (const p of PROTOCOLS) {
  describe(`PublishBatch over ${p.name}`, () => {
    test("publishes in order with one result per message, errors per message, and bounds the batch", async ({ client }) => {
      const c = client("batcher", p);
      const messages = Array.from({ length: 100 }, (_, i) => message("batch", `b${i}`));
      messages.splice(50, 0, message("bad room", "bad"));
      const response = await c.rpc.publishBatch({ messages });
      assert.deepEqual(response.results.map((r) => r.clientMessageId), messages.map((m) => m.clientMessageId));
      const bad = response.results[50]!;
      assert.equal(bad.result.case === "error" && bad.result.value.reason, "INVALID_ROOM");
      assert.deepEqual(
        response.results.flatMap((r) => (r.result.case === "published" ? [Number(r.result.value.position!.sequence)] : [])),
        Array.from({ length: 100 }, (_, i) => i + 1),
      );
      const history = await c.history("batch", { limit: 1000 });
      assert.deepEqual(history.messages.map((m) => m.content), Array.from({ length: 100 }, (_, i) => `b${i}`));
      // A retried batch stores nothing twice.
      const retry = await c.rpc.publishBatch({ messages: messages.slice(0, 3) });
      assert.deepEqual(retry.results.map((r) => r.result.case === "published" && r.result.value.duplicate), [true, true, true]);
      for (const count of [0, 1001]) {
        const error = await c.rpc.publishBatch({ messages: Array.from({ length: count }, (_, i) => message("batch", `x${i}`)) }).catch((e: unknown) => ConnectError.from(e));
        assert.ok(error instanceof ConnectError && error.code === Code.InvalidArgument, `${count} messages`);
      }
    });
  });
}
