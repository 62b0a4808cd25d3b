import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, test } from "vitest";
import { PublishRequestSchema } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import * as F from "../../src/server/h2/frames.js";
import { HpackDecoder } from "../../src/server/h2/hpack.js";
import type { RunningServer } from "../../src/server/server.js";
import { clientFor, startBroker } from "../support/broker.js";
import { grpcRequest, RawH2 } from "../support/h2-raw.js";
import { testToken } from "../support/tokens.js";
import { waitUntil } from "../support/wait.js";

/**
 * gRPC requests a well-behaved client never sends, over a raw HTTP/2
 * connection to the broker's own gRPC path (src/server/grpc/fast-path.ts):
 * each call fails with the right status while the request is still open, and
 * the connection and other clients go on.
 */

let broker: RunningServer;
const clients: RawH2[] = [];

beforeAll(async () => {
  broker = await startBroker();
});
afterAll(async () => {
  for (const c of clients) c.destroy();
  await broker.close();
});

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
    const client = await RawH2.connect(broker.port);
    clients.push(client);
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
    const other = clientFor(broker.url, "bystander");
    const { sequence } = await other.publish("hostile-two", "after");
    assert.equal(sequence, 1n);
  });
});
