import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { PublishInput } from "../broker/broker.js";
import { NO_ATTRIBUTES } from "../broker/publishing.js";
import type { Dependency } from "../engine/engine.js";

/**
 * Hand-written decoders for the requests on the publish hot path
 * (PublishStream, PublishBatch): one pass over the bytes into the plain
 * objects the broker takes, without protobuf-es's reflective decoding.
 * test/unit/wire-decoders.test.ts checks them against protobuf-es. A
 * malformed message throws (the caller answers INVALID_ARGUMENT).
 */

/** seqcast.v1.PublishRequest at the reader's position, up to `end`. */
function readPublishRequest(reader: BinaryReader, end: number, bytes: Uint8Array): PublishInput {
  const input: PublishInput = { room: "", content: "", payload: EMPTY, attributes: NO_ATTRIBUTES, clientMessageId: "" };
  newPositions();
  // Where this request's dependencies lie, while they are one run of entries (see lastRun).
  let runStart = -1;
  let runEnd = -1;
  let inRun = false;
  let decoded = false;
  while (reader.pos < end) {
    const at = reader.pos;
    const [field, wireType] = reader.tag();
    if (field !== 6) inRun = false;
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
        if (input.attributes === NO_ATTRIBUTES) input.attributes = {};
        input.attributes[key] = value;
        break;
      }
      case 5:
        input.clientMessageId = reader.string();
        break;
      case 6: {
        if (input.dependencies === undefined) {
          runStart = at;
          inRun = true;
          const length = sameRun(bytes, at, end);
          if (length > 0) {
            input.dependencies = lastRunList;
            reader.pos = runEnd = at + length;
            break;
          }
        } else if (input.dependencies === lastRunList) input.dependencies = lastRunList.slice(); // more after the run: a list of its own
        if (!inRun) runStart = -1; // not one run: not remembered
        ((input.dependencies as Dependency[] | undefined) ??= []).push(readRoomPosition(reader, reader.uint32() + reader.pos, bytes));
        decoded = true;
        if (inRun) runEnd = reader.pos;
        break;
      }
      default:
        reader.skip(wireType);
    }
  }
  if (decoded && runStart >= 0) {
    lastRun = copyOf(bytes, runStart, runEnd);
    lastRunList = Object.freeze(input.dependencies as Dependency[]);
  }
  return input;
}

/**
 * The dependencies of the last request whose list was decoded, as their
 * bytes (field 6 entries, tags included, back to back) and the frozen list
 * made of them. The SDK attaches its whole context to every publish and it
 * rarely moves, so most requests bring these very bytes: they get this very
 * list, which the validator, the engines' encoders and compactDependencies
 * then know by identity, instead of eight positions to compare, check,
 * write and match one by one.
 */
let lastRun = Buffer.alloc(0);
let lastRunList: readonly Dependency[] = [];

/** lastRun's length if `message` holds its bytes at `start` (within `end`), else 0. */
function sameRun(message: Uint8Array, start: number, end: number): number {
  const run = lastRun;
  const length = run.length;
  if (length === 0 || start + length > end) return 0;
  // memcmp: ~40 bytes a position, a JavaScript loop over them cost more than decoding the rest of the request.
  return run.compare(message, start, start + length) === 0 ? length : 0;
}

/**
 * The positions of the last request that had any, with their bytes. A
 * publisher's context rarely moves between two of its publishes, so most
 * dependencies arrive as the same bytes as in its previous request, at the
 * same place in the list or one off (the SDK moves a room it was active in
 * to the end). Those get the same object, without decoding strings and
 * numbers again, nor validating them again (validateDependencies knows the
 * object), and the compact form of a message's list (compactDependencies)
 * then finds them by identity. They are frozen, so sharing them is safe.
 */
let previous: Array<{ bytes: Uint8Array; position: Dependency }> = [];
let current: Array<{ bytes: Uint8Array; position: Dependency }> = [];

/** seqcast.v1.RoomPosition (a causal dependency) from `reader.pos` up to `end` of `message`, the request's bytes. */
function readRoomPosition(reader: BinaryReader, end: number, message: Uint8Array): Dependency {
  if (end > message.length) throw new Error("truncated message");
  const start = reader.pos;
  const i = current.length;
  const seen = sameAs(previous[i], message, start, end) ?? sameAs(previous[i + 1], message, start, end) ?? sameAs(previous[i - 1], message, start, end);
  if (seen) {
    reader.pos = end;
    current.push(seen);
    return seen.position;
  }
  const position = Object.freeze(decodeRoomPosition(reader, end));
  current.push({ bytes: copyOf(message, start, end), position });
  return position;
}

/** `entry`, if its bytes are those of `message` from `start` to `end`. */
function sameAs(entry: { bytes: Uint8Array; position: Dependency } | undefined, message: Uint8Array, start: number, end: number) {
  if (!entry || entry.bytes.length !== end - start) return undefined;
  const bytes = entry.bytes;
  // From the end: positions differ in their last bytes (room suffix, sequence) more often than in their first.
  for (let i = bytes.length - 1; i >= 0; i--) if (bytes[i] !== message[start + i]) return undefined;
  return entry;
}

/** A request starts: the last one's positions, if it had any, are what its own are compared with. */
function newPositions(): void {
  if (current.length === 0) return;
  previous = current;
  current = [];
}

function decodeRoomPosition(reader: BinaryReader, end: number): Dependency {
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

/** A copy of bytes [start, end) (a Buffer's slice() is a view, which would keep the request's chunk alive, and see it change if it were reused). */
const copyOf = (bytes: Uint8Array, start: number, end: number) => Buffer.from(bytes.subarray(start, end));

/** The messages of a PublishStreamRequest or PublishBatchRequest (both: repeated PublishRequest messages = 1). */
export function decodePublishRequests(bytes: Uint8Array): PublishInput[] {
  const reader = new BinaryReader(bytes);
  const out: PublishInput[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      const length = reader.uint32();
      out.push(readPublishRequest(reader, reader.pos + length, bytes));
    } else reader.skip(wireType);
  }
  if (reader.pos !== reader.len) throw new Error("truncated message");
  return out;
}

/** A PublishRequest (unary Publish). */
export function decodePublishRequest(bytes: Uint8Array): PublishInput {
  const reader = new BinaryReader(bytes);
  const input = readPublishRequest(reader, reader.len, bytes);
  if (reader.pos !== reader.len) throw new Error("truncated message");
  return input;
}
