import assert from "node:assert/strict";
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { ReorderBuffer } from "../../src/client/reorder-buffer.js";
import {
  GetHistoryRequest,
  PubSubServiceClient,
  SubscribeRequest,
  type SubscribeResponse,
} from "../../gen/ts-proto/seqcast/v1/pubsub.js";
import type { Message } from "../../gen/ts-proto/seqcast/v1/types.js";
import { describe, test as base, testToken, waitUntil } from "../support/fixtures.js";

/**
 * The contract serves an independent generated client: ts-proto stubs on
 * @grpc/grpc-js (no Connect code on the client side), with the SDK's
 * reorder buffer applied to what it receives.
 */
/** A ts-proto client of the test's broker, closed after the test. */
const test = base.extend<{ grpcjs: PubSubServiceClient }>({
  grpcjs: async ({ broker }, use) => {
    const client = new PubSubServiceClient(`127.0.0.1:${broker.port}`, credentials.createInsecure());
    await use(client);
    client.close();
  },
});

describe("ts-proto + @grpc/grpc-js client", () => {

  const meta = (user: string) => {
    const m = new Metadata();
    m.set("authorization", `Bearer ${testToken(user)}`);
    return m;
  };
  const publish = (client: PubSubServiceClient, room: string, content: string) =>
    new Promise<bigint>((resolve, reject) =>
      client.publish({ room, content, payload: Buffer.alloc(0), attributes: {}, clientMessageId: "", dependencies: [] }, meta("grpcjs"), (err, res) =>
        err ? reject(err) : resolve(res.position!.sequence),
      ),
    );

  test("subscribes, receives messages through the reorder buffer in order, exactly once", async ({ grpcjs: client }) => {
    const delivered: Message[] = [];
    let buffer: ReorderBuffer<Message & { epoch: string; sequence: bigint }> | undefined;
    const stream = client.subscribe(SubscribeRequest.fromPartial({ rooms: [{ room: "grpcjs" }], device: "grpc-js" }), meta("reader"));
    stream.on("data", (response: SubscribeResponse) => {
      for (const event of response.events) {
        if (event.subscribed?.position) buffer = new ReorderBuffer(event.subscribed.position);
        if (event.message && buffer)
          for (const out of buffer.push(event.message)) if (out.type === "deliver") delivered.push(out.item);
      }
    });
    const ended = new Promise<ServiceError>((resolve) => stream.on("error", resolve));
    await waitUntil(() => buffer !== undefined, "subscribed event");
    const sequences = await Promise.all(Array.from({ length: 50 }, (_, i) => publish(client, "grpcjs", `m${i}`)));
    assert.deepEqual([...sequences].sort((a, b) => Number(a - b)), Array.from({ length: 50 }, (_, i) => BigInt(i + 1)));
    await waitUntil(() => delivered.length === 50, "50 deliveries");
    assert.deepEqual(delivered.map((m) => Number(m.sequence)), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.ok(delivered.every((m) => m.sender === "grpcjs" && m.room === "grpcjs"));
    stream.cancel();
    assert.equal((await ended).code, status.CANCELLED);
  });

  test("gets the same status codes as every other client", async ({ grpcjs: client }) => {
    const err = await new Promise<ServiceError>((resolve) =>
      client.getHistory(GetHistoryRequest.fromPartial({ room: "no good" }), meta("x"), (e) => resolve(e!)),
    );
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.match(err.details, /not a room name/);
  });
});
