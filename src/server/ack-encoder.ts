import { toBinary } from "@bufbuild/protobuf";
import { BrokerError } from "../broker/errors.js";
import { putShortAscii } from "../engine/bytes.js";
import type { PublishResult } from "../engine/engine.js";
import { PublishResultSchema } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { toPbPublishResult } from "./convert.js";
import type { PublishOutcome } from "./publish-results.js";
import { LEN, putTimestamp, putUint64, putVarint, VARINT, varintSize } from "./wire-put.js";

/**
 * Publish acknowledgements as gRPC frames: a PublishResponse (unary
 * Publish), or the results of a PublishStream batch or a PublishBatch.
 * protobuf-es's BinaryWriter took five forks and joins per result (an array
 * and a copy each) and was the largest share of the broker's CPU per publish
 * after the idempotency keys (bench ingest profile); these write the same
 * bytes (test/unit/wire-encoders.test.ts compares them, also on random
 * results).
 *
 * One pass, no sizes first: a result's strings (its client_message_id and
 * message id, 36 characters each from the SDK) would each be read twice,
 * once to count their UTF-8 bytes and once to write them, and that was
 * half the encoder's time (~1 us a result). Each nested message and string
 * gets one byte for its length, written once its bytes are; the rare one of
 * 128 bytes or more is moved up to make room for a longer varint. The frame
 * is written in a scratch buffer sized for the worst case (3 bytes per UTF-16
 * unit) and copied out at its size.
 *
 * Field numbers are those of proto/seqcast/v1/pubsub.proto and types.proto,
 * all below 16 (one-byte tags).
 */

let scratch = Buffer.allocUnsafe(64 * 1024);

/** The scratch buffer, at least `bytes` long. */
function scratchOf(bytes: number): Buffer {
  if (scratch.length < bytes) scratch = Buffer.allocUnsafe(Math.max(bytes, scratch.length * 2));
  return scratch;
}

/** Most bytes one PublishResponse can take beside its strings: tags, varint lengths and numbers at their longest. */
const RESPONSE_FIXED = 72;

/** Most bytes the PublishResponse of `result` can take. */
const responseBound = (result: PublishResult) =>
  RESPONSE_FIXED + 3 * (result.message.id.length + result.message.epoch.length);

/**
 * Ends a length-delimited part whose one reserved length byte is at `start`
 * and whose bytes run up to `at`; returns the new end.
 */
function endLength(out: Buffer, start: number, at: number): number {
  const length = at - start - 1;
  if (length < 0x80) {
    out[start] = length;
    return at;
  }
  const extra = varintSize(length) - 1;
  out.copyWithin(start + 1 + extra, start + 1, at);
  putVarint(out, start, length);
  return at + extra;
}

/** A string field (omitted when empty, as proto3 does). */
function putText(out: Buffer, at: number, fieldNumber: number, s: string): number {
  const n = s.length;
  if (n === 0) return at;
  out[at++] = (fieldNumber << 3) | LEN;
  if (n <= 16) {
    // Short ASCII (epochs, most ids of clients' own): in JS, cheaper than a native call.
    const end = putShortAscii(out, at, s);
    if (end >= 0) return end;
  }
  // At most 3 bytes per UTF-16 unit: up to 42 units fit a one-byte length.
  if (n <= 42) return endLength(out, at, at + 1 + out.write(s, at + 1, "utf8"));
  const bytes = Buffer.byteLength(s, "utf8");
  at = putVarint(out, at, bytes);
  return at + out.write(s, at, bytes, "utf8");
}

/** seqcast.v1.PublishResponse's fields. */
function putResponse(out: Buffer, at: number, result: PublishResult): number {
  const { message } = result;
  at = putText(out, at, 1, message.id);
  // position = 2: RoomPosition { epoch = 1; sequence = 2 }
  out[at++] = (2 << 3) | LEN;
  const position = at++;
  at = putText(out, at, 1, message.epoch);
  if (message.sequence !== 0n) {
    out[at++] = (2 << 3) | VARINT;
    at = putUint64(out, at, message.sequence);
  }
  at = endLength(out, position, at);
  at = putTimestamp(out, at, 3, message.timeMs);
  if (result.duplicate) {
    out[at++] = (4 << 3) | VARINT;
    out[at++] = 1;
  }
  return at;
}

/** The gRPC frame of the message written in out[5, end): its 5-byte prefix, copied out at its size. */
function framed(out: Buffer, end: number): Buffer {
  out[0] = 0;
  out.writeUInt32BE(end - 5, 1);
  const frame = Buffer.allocUnsafe(end);
  out.copy(frame, 0, 0, end);
  return frame;
}

/** A unary Publish's response, framed. */
export function publishResponseFrame(result: PublishResult): Buffer {
  const out = scratchOf(5 + responseBound(result));
  return framed(out, putResponse(out, 5, result));
}

/**
 * `{ repeated PublishResult results = 1 }` of a batch, framed: a
 * PublishStreamResponse and a PublishBatchResponse are both that. An error
 * result (rare) goes through protobuf-es.
 */
export function publishResultsFrame(batch: readonly PublishOutcome[]): Buffer {
  let bound = 5;
  const errors: Array<Uint8Array | undefined> = [];
  for (let i = 0; i < batch.length; i++) {
    const { clientMessageId, outcome } = batch[i]!;
    if (outcome instanceof BrokerError) {
      const bytes = toBinary(PublishResultSchema, toPbPublishResult(clientMessageId, outcome));
      errors[i] = bytes;
      bound += 6 + bytes.length;
    } else bound += 18 + 3 * clientMessageId.length + responseBound(outcome);
  }
  const out = scratchOf(bound);
  let at = 5;
  for (let i = 0; i < batch.length; i++) {
    out[at++] = (1 << 3) | LEN;
    const error = errors[i];
    if (error !== undefined) {
      at = putVarint(out, at, error.length);
      out.set(error, at);
      at += error.length;
      continue;
    }
    // PublishResult { client_message_id = 1; published = 2 }
    const { clientMessageId, outcome } = batch[i]!;
    const result = at++;
    at = putText(out, at, 1, clientMessageId);
    out[at++] = (2 << 3) | LEN;
    const published = at++;
    at = endLength(out, published, putResponse(out, at, outcome as PublishResult));
    at = endLength(out, result, at);
  }
  return framed(out, at);
}
