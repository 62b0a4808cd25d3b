import assert from "node:assert/strict";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, test } from "vitest";
import { PublishRequestSchema } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import * as F from "../../src/server/h2/frames.js";
import { HpackDecoder } from "../../src/server/h2/hpack.js";
import { clientFor } from "../support/broker.js";
import { brokerForRawClients, grpcRequest, type RawH2 } from "../support/h2-raw.js";
import { testToken } from "../support/tokens.js";
import { waitUntil } from "../support/wait.js";

/**
 * gRPC requests a well-behaved client never sends, over a raw HTTP/2
 * connection to the broker's own gRPC path (src/server/grpc/fast-path.ts):
 * each call fails with the right status while the request is still open, and
 * the connection and other clients go on.
 */

const fixture = brokerForRawClients();

/** A gRPC length-prefixed PublishRequest. */
function publishMessage(room: string, text: string): Buffer {
  const body = toBinary(PublishRequestSchema, create(PublishRequestSchema, { room, content: text }));
  const framed = Buffer.alloc(5 + body.length);
  framed.writeUInt32BE(body.length, 1);
  framed.set(body, 5);
  return framed;
}

/** The fields of every header block the broker sent on a stream, in order. */
function headerFields(client: RawH2, stream: number): Map<string, string> {
  const fields = new Map<string, string>();
  const hpack = new HpackDecoder();
  for (const frame of client.frames) if (frame.type === F.HEADERS && frame.stream === stream) hpack.decode(frame.payload, (name, value) => fields.set(name, value));
  return fields;
}

describe("gRPC requests against the broker's own gRPC path", () => {
  test("a unary call whose request carries a second message fails INVALID_ARGUMENT at once, before the client ends its request", async () => {
    const client = await fixture.connect();
    client.headers(1, [...grpcRequest("/seqcast.v1.PubSubService/Publish"), ["authorization", `Bearer ${testToken("mallory")}`]]);
    // Two messages and no END_STREAM: before, the broker kept every message until the request ended, however many came.
    client.send(F.DATA, 0, 1, Buffer.concat([publishMessage("hostile-two", "one"), publishMessage("hostile-two", "two")]));
    await waitUntil(() => headerFields(client, 1).has("grpc-status"), "the call's status", 5000);
    const fields = headerFields(client, 1);
    assert.equal(fields.get("grpc-status"), "3", `status: ${fields.get("grpc-message")}`);
    assert.match(decodeURIComponent(fields.get("grpc-message") ?? ""), /expected one request message/);
    // The upload is stopped (RST_STREAM NO_ERROR), the connection is not.
    await waitUntil(() => client.resetCodes(1).length > 0, "the upload stopped", 5000);
    assert.deepEqual(client.resetCodes(1), [F.NO_ERROR]);
    assert.equal(client.goawayCode(), undefined);
    // Nothing was published, and another client is served.
    const other = clientFor(fixture.broker.url, "bystander");
    const { sequence } = await other.publish("hostile-two", "after");
    assert.equal(sequence, 1n);
  });
  test("calls that together hold more than a connection's budget of unfinished requests: the one that goes over fails RESOURCE_EXHAUSTED, the rest go on", async () => {
    // A Node.js client stops opening streams while more than its session memory (10 MB by default) of requests is unsent.
    const session = http2.connect(fixture.broker.url, { maxSessionMemory: 1024 });
    session.on("error", () => {});
    const authorization = `Bearer ${testToken("mallory")}`;
    // Each call declares a message just under the 4 MiB the broker reads and sends all of it but 100 bytes: 17 of them hold more than the 64 MiB budget, 16 do not.
    const declared = 4 * 1024 * 1024 - 100;
    const body = Buffer.alloc(5 + declared - 100, 0x61);
    body.writeUInt32BE(declared, 1);
    const round = async (method: string) => {
      const statuses: Array<string | undefined> = [];
      const calls = Array.from({ length: 17 }, (_, i) => {
        const call = session.request({ ":method": "POST", ":path": `/seqcast.v1.PubSubService/${method}`, "content-type": "application/grpc", te: "trailers", authorization });
        call.on("error", () => {});
        const status = (headers: http2.IncomingHttpHeaders) => {
          if (headers["grpc-status"] !== undefined) statuses[i] = `${headers["grpc-status"]} ${decodeURIComponent(String(headers["grpc-message"] ?? ""))}`;
        };
        call.on("response", status).on("trailers", status);
        call.resume();
        return new Promise<http2.ClientHttp2Stream>((resolve) => call.write(body, () => resolve(call)));
      });
      const open = await Promise.all(calls);
      // A PING's answer comes after the broker read every byte sent before it.
      await new Promise<void>((resolve, reject) => session.ping((error) => (error ? reject(error) : resolve())));
      await waitUntil(() => statuses.filter(Boolean).length > 0, `a call refused (${method})`, 5000);
      const refused = statuses.filter(Boolean);
      assert.equal(refused.length, 1, `${method}, refused: ${JSON.stringify(refused)}`);
      assert.match(refused[0]!, /^8 this connection's calls hold more than 67108864 bytes/);
      return open;
    };
    const cancel = async (calls: http2.ClientHttp2Stream[]) => {
      for (const call of calls) call.close(http2.constants.NGHTTP2_CANCEL);
      await new Promise<void>((resolve, reject) => session.ping((error) => (error ? reject(error) : resolve())));
    };
    const unary = await round("Publish");
    // Another call on the same connection is served meanwhile.
    const other = await new Promise<string>((resolve) => {
      const call = session.request({ ":method": "POST", ":path": "/seqcast.v1.PubSubService/Publish", "content-type": "application/grpc", te: "trailers", authorization });
      call.on("trailers", (headers) => resolve(String(headers["grpc-status"])));
      call.resume();
      call.end(publishMessage("hostile-budget", "served"));
    });
    assert.equal(other, "0");
    // Cancelled calls give their bytes back: the same again, unary then streaming, is refused at the same point, not sooner.
    await cancel(unary);
    await cancel(await round("PublishStream"));
    await cancel(await round("PublishStream"));
    session.close();
  }, 30_000);
});
