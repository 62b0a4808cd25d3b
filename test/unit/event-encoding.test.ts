import { describe, expect, it } from "vitest";
import { fromBinary } from "@bufbuild/protobuf";
import type { StoredMessage } from "../../src/engine/engine.js";
import type { SessionEvent } from "../../src/broker/session.js";
import { subscribeFrame } from "../../src/server/event-encoding.js";
import { SubscribeResponseSchema } from "../../gen/es/seqcast/v1/pubsub_pb.js";

function message(sequence: number): SessionEvent {
  const stored: StoredMessage = {
    id: `m${sequence}`,
    room: "general",
    epoch: "e1",
    sequence: BigInt(sequence),
    sender: "alice",
    content: `hello ${sequence}`,
    payload: new Uint8Array([sequence]),
    attributes: {},
    timeMs: 1_700_000_000_000 + sequence,
    clientMessageId: "",
  };
  return { type: "message", message: stored };
}

/** What a client decodes from a frame: the events' kinds and message sequences. */
function decoded(pieces: Buffer | Uint8Array[]): string[] {
  const frame = Array.isArray(pieces) ? Buffer.concat(pieces) : pieces;
  expect(frame[0]).toBe(0);
  expect(frame.readUInt32BE(1)).toBe(frame.length - 5);
  const response = fromBinary(SubscribeResponseSchema, frame.subarray(5));
  return response.events.map((e) =>
    e.event.case === "message" ? `message ${e.event.value.sequence}` : String(e.event.case),
  );
}

describe("subscribeFrame", () => {
  it("gives sessions with the same queued events one shared frame, and a session with other events its own", () => {
    const [a, b, c] = [message(1), message(2), message(3)];
    // Each session queues its own wrapper objects around the shared stored messages.
    const rewrap = (e: SessionEvent): SessionEvent => ({ ...e });
    const first = subscribeFrame([a, b, c]);
    const second = subscribeFrame([a, b, c].map(rewrap));
    expect(second).toBe(first);
    expect(decoded(second)).toEqual(["message 1", "message 2", "message 3"]);

    const shorter = subscribeFrame([a, b]);
    expect(decoded(shorter)).toEqual(["message 1", "message 2"]);
    const other = subscribeFrame([a, b, message(4)]);
    expect(decoded(other)).toEqual(["message 1", "message 2", "message 4"]);
    // The earlier frame was not overwritten by later ones.
    expect(decoded(first)).toEqual(["message 1", "message 2", "message 3"]);
    // A run as long as the last one, alike but for its last event, is not taken for it.
    expect(decoded(subscribeFrame([a, b, c]))).toEqual(["message 1", "message 2", "message 3"]);
    expect(decoded(subscribeFrame([message(5), b, c]))).toEqual(["message 5", "message 2", "message 3"]);
  });

  it("encodes a tick's heartbeat once for all its streams, and a later tick's with its own time", () => {
    const a = message(10);
    const tick1: SessionEvent = { type: "heartbeat", timeMs: 1_000 };
    const tick2: SessionEvent = { type: "heartbeat", timeMs: 2_000 };
    const beatTime = (frame: Buffer | Uint8Array[], index: number) => {
      const beat = fromBinary(SubscribeResponseSchema, Buffer.concat([frame].flat()).subarray(5)).events[index]!.event;
      return beat.case === "heartbeat" ? Number(beat.value.time!.seconds) : undefined;
    };
    // Alone on a stream: every idle stream of the tick gets the very same frame.
    const alone = subscribeFrame([tick1]);
    expect(subscribeFrame([tick1])).toBe(alone);
    expect(beatTime(alone, 0)).toBe(1);
    const later = subscribeFrame([tick2]);
    expect(later).not.toBe(alone);
    expect(beatTime(later, 0)).toBe(2);
    // Behind a message, the next tick's heartbeat is not taken for the previous one.
    const first = subscribeFrame([a, tick1]);
    const second = subscribeFrame([a, tick2]);
    expect(second).not.toBe(first);
    expect(decoded(second)).toEqual(["message 10", "heartbeat"]);
    expect([beatTime(first, 1), beatTime(second, 1)]).toEqual([1, 2]);
  });
});
