import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, it } from "vitest";
import { PublishRequestSchema, PublishStreamRequestSchema } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { decodePublishRequest, decodePublishRequests } from "../../src/server/wire-decoders.js";

const plain = (m: { room: string; content: string; payload: Uint8Array; attributes: Record<string, string>; clientMessageId: string }) => ({
  room: m.room,
  content: m.content,
  payload: [...m.payload],
  attributes: { ...m.attributes },
  clientMessageId: m.clientMessageId,
});

describe("hand-written request decoders read what protobuf-es reads", () => {
  const messages: Array<{ room: string; content: string; payload: Uint8Array; attributes: Record<string, string>; clientMessageId: string }> = [
    { room: "sports.football", content: "héllo 🙂", payload: new Uint8Array([1, 2, 3]), attributes: { kind: "goal", "": "x", team: "" }, clientMessageId: "cm-1" },
    { room: "", content: "", payload: new Uint8Array(0), attributes: {}, clientMessageId: "" },
    { room: "@bob", content: "x".repeat(300), payload: new Uint8Array(70_000).fill(7), attributes: {}, clientMessageId: "z" },
  ];

  it("PublishStreamRequest and PublishRequest", () => {
    const stream = toBinary(PublishStreamRequestSchema, create(PublishStreamRequestSchema, { messages }));
    assert.deepEqual(decodePublishRequests(stream).map(plain), fromBinary(PublishStreamRequestSchema, stream).messages.map(plain));
    for (const m of messages) {
      const bytes = toBinary(PublishRequestSchema, create(PublishRequestSchema, m));
      assert.deepEqual(plain(decodePublishRequest(bytes)), plain(fromBinary(PublishRequestSchema, bytes)));
    }
  });

  it("skips unknown fields, as a newer client may send them", () => {
    const known = toBinary(PublishRequestSchema, create(PublishRequestSchema, messages[0]));
    const unknown = new Uint8Array([...known, (14 << 3) | 2, 3, 1, 2, 3, (15 << 3) | 0, 5]);
    assert.deepEqual(plain(decodePublishRequest(unknown)), plain(messages[0]!));
  });

  it("throws on a truncated message", () => {
    const bytes = toBinary(PublishStreamRequestSchema, create(PublishStreamRequestSchema, { messages }));
    assert.throws(() => decodePublishRequests(bytes.subarray(0, bytes.length - 10)));
  });
});
