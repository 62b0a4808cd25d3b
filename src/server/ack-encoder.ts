import { toBinary } from "@bufbuild/protobuf";
import { BrokerError } from "../broker/errors.js";
import type { PublishResult } from "../engine/engine.js";
import { PublishResultSchema } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { toPbPublishResult } from "./convert.js";
import type { PublishOutcome } from "./publish-results.js";
import { field, int64Size, LEN, putInt64, putString, putUint64, putVarint, strLen, uint64Size, VARINT, varintSize } from "./wire-put.js";

/**
 * Publish acknowledgements as gRPC frames, sizes first and then one buffer:
 * a PublishResponse (unary Publish), or the results of a PublishStream
 * batch or a PublishBatch. protobuf-es's BinaryWriter took five forks and joins per result
 * (an array and a copy each) and was the largest share of the broker's CPU
 * per publish after the idempotency keys (bench ingest profile); these write
 * the same bytes (test/unit/wire-encoders.test.ts compares them).
 *
 * Field numbers are those of proto/seqcast/v1/pubsub.proto and types.proto,
 * all below 16 (one-byte tags).
 */

/** Sizes of one PublishResponse's parts, computed once and used to write it. */
interface Sized {
  id: number;
  epoch: number;
  position: number;
  seconds: number;
  nanos: number;
  time: number;
  body: number;
}

function size(result: PublishResult): Sized {
  const { message } = result;
  const id = strLen(message.id);
  const epoch = strLen(message.epoch);
  const position = field(epoch) + (message.sequence !== 0n ? 1 + uint64Size(message.sequence) : 0);
  const seconds = Math.floor(message.timeMs / 1000);
  const nanos = (message.timeMs - seconds * 1000) * 1_000_000;
  const time = (seconds !== 0 ? 1 + int64Size(seconds) : 0) + (nanos !== 0 ? 1 + varintSize(nanos) : 0);
  const body = field(id) + field(position, true) + field(time, true) + (result.duplicate ? 2 : 0);
  return { id, epoch, position, seconds, nanos, time, body };
}

/** seqcast.v1.PublishResponse's fields. */
function put(out: Buffer, at: number, result: PublishResult, s: Sized): number {
  const { message } = result;
  at = putString(out, at, 1, message.id, s.id);
  out[at++] = (2 << 3) | LEN;
  at = putVarint(out, at, s.position);
  at = putString(out, at, 1, message.epoch, s.epoch);
  if (message.sequence !== 0n) {
    out[at++] = (2 << 3) | VARINT;
    at = putUint64(out, at, message.sequence);
  }
  out[at++] = (3 << 3) | LEN;
  at = putVarint(out, at, s.time);
  if (s.seconds !== 0) {
    out[at++] = (1 << 3) | VARINT;
    at = putInt64(out, at, s.seconds);
  }
  if (s.nanos !== 0) {
    out[at++] = (2 << 3) | VARINT;
    at = putVarint(out, at, s.nanos);
  }
  if (result.duplicate) {
    out[at++] = (4 << 3) | VARINT;
    out[at++] = 1;
  }
  return at;
}

/** A gRPC frame's 5-byte prefix (uncompressed, `length` bytes of message). */
function framed(length: number): Buffer {
  const out = Buffer.allocUnsafe(5 + length);
  out[0] = 0;
  out.writeUInt32BE(length, 1);
  return out;
}

function check(out: Buffer, at: number): Buffer {
  if (at !== out.length) throw new Error(`ack encoder: wrote ${at} of ${out.length} bytes`);
  return out;
}

/** A unary Publish's response, framed. */
export function publishResponseFrame(result: PublishResult): Buffer {
  const s = size(result);
  const out = framed(s.body);
  return check(out, put(out, 5, result, s));
}

/**
 * `{ repeated PublishResult results = 1 }` of a batch, framed: a
 * PublishStreamResponse and a PublishBatchResponse are both that. An error
 * result (rare) goes through protobuf-es.
 */
export function publishResultsFrame(batch: readonly PublishOutcome[]): Buffer {
  const sizes = new Array<Sized | Uint8Array>(batch.length);
  const ids = new Array<number>(batch.length);
  let length = 0;
  for (let i = 0; i < batch.length; i++) {
    const { clientMessageId, outcome } = batch[i]!;
    if (outcome instanceof BrokerError) {
      const bytes = toBinary(PublishResultSchema, toPbPublishResult(clientMessageId, outcome));
      sizes[i] = bytes;
      length += field(bytes.length, true);
      continue;
    }
    const s = size(outcome);
    sizes[i] = s;
    ids[i] = strLen(clientMessageId);
    // PublishResult { client_message_id = 1; published = 2 }
    length += field(field(ids[i]!) + field(s.body, true), true);
  }
  const out = framed(length);
  let at = 5;
  for (let i = 0; i < batch.length; i++) {
    const s = sizes[i]!;
    out[at++] = (1 << 3) | LEN;
    if (s instanceof Uint8Array) {
      at = putVarint(out, at, s.length);
      out.set(s, at);
      at += s.length;
      continue;
    }
    const { clientMessageId, outcome } = batch[i]!;
    const idLength = ids[i]!;
    at = putVarint(out, at, field(idLength) + field(s.body, true));
    at = putString(out, at, 1, clientMessageId, idLength);
    out[at++] = (2 << 3) | LEN;
    at = putVarint(out, at, s.body);
    at = put(out, at, outcome as PublishResult, s);
  }
  return check(out, at);
}
