import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { create, toBinary } from "@bufbuild/protobuf";
import { SubscribeResponseSchema } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { SubscribeStreamReader } from "../../bench/lib/lean-wire.js";

// The bench's load generator reads Subscribe streams entry by entry as
// chunks arrive (bench/lib/lean-wire.ts). Its figures are only as good as
// that reader: whatever the chunking, it must see every message once, in order.

/** gRPC messages of SubscribeResponse, each with these messages (sequence, payload length) as events. */
function stream(frames: Array<Array<[number, number]>>): Buffer {
  return Buffer.concat(
    frames.map((messages) => {
      const body = toBinary(
        SubscribeResponseSchema,
        create(SubscribeResponseSchema, {
          events: messages.map(([sequence, size]) => ({
            event: {
              case: "message" as const,
              value: { sequence: BigInt(sequence), room: "r", epoch: "e", payload: new Uint8Array(size).fill(sequence % 251) },
            },
          })),
        }),
      );
      const header = Buffer.alloc(5);
      header.writeUInt32BE(body.length, 1);
      return Buffer.concat([header, body]);
    }),
  );
}

describe("bench SubscribeStreamReader", () => {
  it("yields every message once, in order, with its payload, however the stream is cut into chunks", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 0, maxLength: 12 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 40 }),
        (frameSizes, cuts) => {
          let sequence = 0;
          const frames = frameSizes.map((sizes) => sizes.map((size) => [++sequence, size] as [number, number]));
          const bytes = stream(frames);
          const seen: Array<[number, number, boolean]> = [];
          const reader = new SubscribeStreamReader({
            subscribed: () => {},
            ended: () => {},
            message: (seq, payload) => seen.push([seq, payload.length, payload.every((b) => b === seq % 251)]),
          });
          let pos = 0;
          for (let i = 0; pos < bytes.length; i++) {
            const size = cuts[i % cuts.length]!;
            reader.push(bytes.subarray(pos, pos + size));
            pos += size;
          }
          expect(seen).toEqual(frames.flat().map(([seq, size]) => [seq, size, true]));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reads a stream arriving one byte at a time", () => {
    const frames: Array<Array<[number, number]>> = [[[1, 3], [2, 300]], [], [[3, 0]], [[4, 70_000]]];
    const bytes = stream(frames);
    const seen: number[] = [];
    const reader = new SubscribeStreamReader({ subscribed: () => {}, ended: () => {}, message: (seq) => seen.push(seq) });
    for (let i = 0; i < bytes.length; i++) reader.push(bytes.subarray(i, i + 1));
    expect(seen).toEqual([1, 2, 3, 4]);
  });
});
