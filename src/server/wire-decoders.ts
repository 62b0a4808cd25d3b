import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { PublishInput } from "../broker/broker.js";
import type { Dependency } from "../engine/engine.js";

/**
 * Hand-written decoders for the requests on the publish hot path
 * (PublishStream, PublishBatch): one pass over the bytes into the plain
 * objects the broker takes, without protobuf-es's reflective decoding.
 * test/unit/wire-decoders.test.ts checks them against protobuf-es. A
 * malformed message throws (the caller answers INVALID_ARGUMENT).
 */

/** seqcast.v1.PublishRequest at the reader's position, up to `end`. */
function readPublishRequest(reader: BinaryReader, end: number): PublishInput {
  const input: PublishInput = { room: "", content: "", payload: EMPTY, attributes: {}, clientMessageId: "" };
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    switch (field) {
      case 1:
        input.room = reader.string();
        break;
      case 2:
        input.content = reader.string();
        break;
      case 3:
        input.payload = reader.bytes();
        break;
      case 4: {
        const entryEnd = reader.uint32() + reader.pos;
        let key = "";
        let value = "";
        while (reader.pos < entryEnd) {
          const [f, w] = reader.tag();
          if (f === 1) key = reader.string();
          else if (f === 2) value = reader.string();
          else reader.skip(w);
        }
        input.attributes[key] = value;
        break;
      }
      case 5:
        input.clientMessageId = reader.string();
        break;
      case 6:
        ((input.dependencies as Dependency[] | undefined) ??= []).push(readRoomPosition(reader, reader.uint32() + reader.pos));
        break;
      default:
        reader.skip(wireType);
    }
  }
  return input;
}

/** seqcast.v1.RoomPosition (a causal dependency) up to `end`. */
function readRoomPosition(reader: BinaryReader, end: number): Dependency {
  const d: Dependency = { room: "", epoch: "", sequence: 0n };
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    if (field === 1) d.room = reader.string();
    else if (field === 2) d.epoch = reader.string();
    else if (field === 3) d.sequence = BigInt(reader.uint64());
    else reader.skip(wireType);
  }
  return d;
}

const EMPTY = new Uint8Array(0);

/** The messages of a PublishStreamRequest or PublishBatchRequest (both: repeated PublishRequest messages = 1). */
export function decodePublishRequests(bytes: Uint8Array): PublishInput[] {
  const reader = new BinaryReader(bytes);
  const out: PublishInput[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      const length = reader.uint32();
      out.push(readPublishRequest(reader, reader.pos + length));
    } else reader.skip(wireType);
  }
  if (reader.pos !== reader.len) throw new Error("truncated message");
  return out;
}

/** A PublishRequest (unary Publish). */
export function decodePublishRequest(bytes: Uint8Array): PublishInput {
  const reader = new BinaryReader(bytes);
  const input = readPublishRequest(reader, reader.len);
  if (reader.pos !== reader.len) throw new Error("truncated message");
  return input;
}
