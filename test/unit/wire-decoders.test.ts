import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, it } from "vitest";
import { PublishRequestSchema, PublishStreamRequestSchema } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { decodePublishRequest, decodePublishRequests } from "../../src/server/wire-decoders.js";

type Dependency = { room: string; epoch: string; sequence: bigint };
type Request = { room: string; content: string; payload: Uint8Array; attributes: Record<string, string>; clientMessageId: string; dependencies?: Dependency[] };

const plain = (m: Omit<Request, "dependencies"> & { dependencies?: readonly Dependency[] }) => ({
  room: m.room,
  content: m.content,
  payload: [...m.payload],
  attributes: { ...m.attributes },
  clientMessageId: m.clientMessageId,
  dependencies: (m.dependencies ?? []).map((d) => ({ room: d.room, epoch: d.epoch, sequence: d.sequence })),
});

describe("hand-written request decoders read what protobuf-es reads", () => {
  const messages: Request[] = [
    { room: "sports.football", content: "héllo 🙂", payload: new Uint8Array([1, 2, 3]), attributes: { kind: "goal", "": "x", team: "" }, clientMessageId: "cm-1" },
    { room: "", content: "", payload: new Uint8Array(0), attributes: {}, clientMessageId: "" },
    { room: "@bob", content: "x".repeat(300), payload: new Uint8Array(70_000).fill(7), attributes: {}, clientMessageId: "z" },
    {
      room: "@carol",
      content: "see Alice's question",
      payload: new Uint8Array(0),
      attributes: {},
      clientMessageId: "cm-2",
      dependencies: [
        { room: "general", epoch: "8d4a5c2b9e7f1a30", sequence: 42n },
        { room: "@carol", epoch: "e", sequence: 18_446_744_073_709_551_615n },
        { room: "", epoch: "", sequence: 0n },
      ],
    },
    // Attributes after messages without any (which share one frozen empty object): this one gets its own.
    { room: "general", content: "", payload: new Uint8Array(0), attributes: { lang: "en" }, clientMessageId: "cm-3" },
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

  it("hands the same frozen position for the same bytes, and a new one for others", () => {
    const bytes = (sequence: bigint) =>
      toBinary(PublishRequestSchema, create(PublishRequestSchema, { room: "r", dependencies: [{ room: "general", epoch: "e1", sequence }, { room: "b", epoch: "e1", sequence: 1n }] }));
    const [a, b] = [decodePublishRequest(bytes(7n)), decodePublishRequest(bytes(7n))];
    assert.equal(a.dependencies![0], b.dependencies![0]);
    assert.ok(Object.isFrozen(a.dependencies![0]));
    const c = decodePublishRequest(bytes(8n));
    assert.notEqual(c.dependencies![0], a.dependencies![0]);
    assert.deepEqual(c.dependencies!.map((d) => d.sequence), [8n, 1n]);
    assert.equal(c.dependencies![1], a.dependencies![1], "the unchanged one is shared");
  });

  it("hands the same frozen list for the same run of dependencies, and decodes any other layout as protobuf-es does", () => {
    const deps = (n: number, last = 1n): Dependency[] =>
      Array.from({ length: n }, (_, i) => ({ room: `room${i}`, epoch: "8d4a5c2b9e7f1a30", sequence: i === n - 1 ? last : BigInt(100 + i) }));
    const request = (dependencies: Dependency[], room = "r") => toBinary(PublishRequestSchema, create(PublishRequestSchema, { room, dependencies }));
    const decodes = (bytes: Uint8Array) => {
      const ours = decodePublishRequest(bytes);
      assert.deepEqual(plain(ours), plain(fromBinary(PublishRequestSchema, bytes)));
      return ours.dependencies!;
    };
    const first = decodes(request(deps(8)));
    assert.ok(Object.isFrozen(first));
    assert.equal(decodes(request(deps(8), "another room")), first, "the same bytes: the same list");
    const moved = decodes(request(deps(8, 2n)));
    assert.notEqual(moved, first);
    assert.deepEqual(moved.slice(0, 7), first.slice(0, 7));
    // The run, then one more position in the same request: a list of its own; the remembered one is untouched.
    const longer = decodes(new Uint8Array([...request(deps(8, 2n)), ...request([{ room: "extra", epoch: "e", sequence: 9n }], "")]));
    assert.equal(longer.length, 9);
    assert.equal(moved.length, 8);
    // Positions split by another field: decoded, and not remembered as a run.
    const split = new Uint8Array([...request(deps(2)), ...request([], "split"), ...request([{ room: "z", epoch: "e", sequence: 3n }], "")]);
    assert.equal(decodes(split).length, 3);
    const again = decodes(request(deps(8, 2n)));
    assert.deepEqual(again.map((d) => d.sequence), moved.map((d) => d.sequence));
    // A context that grew by one position (the remembered run, then one more): remembered as the longer run.
    const grown = decodes(request([...deps(8, 2n), { room: "room8", epoch: "e", sequence: 1n }]));
    assert.equal(grown.length, 9);
    assert.equal(decodes(request([...deps(8, 2n), { room: "room8", epoch: "e", sequence: 1n }])), grown);
    assert.equal(again.length, 8, "the shorter list is untouched");
    // The remembered run is a copy: a request buffer reused after decoding does not change what it matches.
    const reused = request(deps(8, 5n));
    const five = decodes(reused);
    reused.fill(0);
    assert.equal(decodes(request(deps(8, 5n))), five);
  });

  it("reads long ASCII ids straight, and invalid UTF-8 as BinaryReader.string() does (U+FFFD)", () => {
    const uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const bytes = toBinary(PublishRequestSchema, create(PublishRequestSchema, { room: "r".repeat(40), clientMessageId: uuid, content: "abc" }));
    assert.deepEqual(plain(decodePublishRequest(Buffer.from(bytes))), plain(fromBinary(PublishRequestSchema, bytes)));
    // content = "a", 0xff, "b": not UTF-8.
    const invalid = new Uint8Array([(2 << 3) | 2, 3, 0x61, 0xff, 0x62]);
    assert.equal(decodePublishRequest(invalid).content, "a\ufffdb");
  });

  it("throws on an illegal tag, as protobuf-es does", () => {
    assert.throws(() => decodePublishRequest(new Uint8Array([0, 1])), /illegal tag/);
    assert.throws(() => decodePublishRequests(new Uint8Array([(1 << 3) | 7, 1])), /illegal tag/);
  });

  it("throws on a truncated message", () => {
    const bytes = toBinary(PublishStreamRequestSchema, create(PublishStreamRequestSchema, { messages }));
    assert.throws(() => decodePublishRequests(bytes.subarray(0, bytes.length - 10)));
  });
});
