import type { HistoryPage } from "../engine/engine.js";
import { encodeMessageEvent } from "./message-encoder.js";
import { field, LEN, putString, putUint64, putVarint, strLen, uint64Size, VARINT, varintSize } from "./wire-put.js";

/**
 * A GetHistory answer as one gRPC frame (the fast path's, grpc/fast-path.ts):
 * the GetHistoryResponse bytes protobuf-es would write
 * (test/unit/wire-encoders.test.ts compares them) without building a
 * message object per stored message. Each message is written by the
 * published-message encoder (message-encoder.ts), whose SubscribeEvent
 * { message = 3 } has the layout of a GetHistoryResponse `messages` entry
 * (field 1) but for its tag byte.
 *
 * Field numbers are those of seqcast.v1.GetHistoryResponse and
 * StreamPosition (proto/seqcast/v1/pubsub.proto, types.proto).
 */
export function historyResponseFrame(page: HistoryPage): Buffer {
  const entries = page.messages.map((m) => encodeMessageEvent(m));
  const { epoch, sequence } = page.position;
  const epochLength = strLen(epoch);
  const positionLength = field(epochLength) + (sequence !== 0n ? 1 + uint64Size(sequence) : 0);
  let size = 1 + varintSize(positionLength) + positionLength;
  for (const entry of entries) size += entry.length;
  if (page.firstSequence !== 0n) size += 1 + uint64Size(page.firstSequence);
  if (page.hasMore) size += 2;

  const out = Buffer.allocUnsafe(5 + size);
  out[0] = 0;
  out.writeUInt32BE(size, 1);
  let at = 5;
  for (const entry of entries) {
    out.set(entry, at);
    out[at] = (1 << 3) | LEN;
    at += entry.length;
  }
  out[at++] = (2 << 3) | LEN;
  at = putVarint(out, at, positionLength);
  at = putString(out, at, 1, epoch, epochLength);
  if (sequence !== 0n) {
    out[at++] = (2 << 3) | VARINT;
    at = putUint64(out, at, sequence);
  }
  if (page.firstSequence !== 0n) {
    out[at++] = (3 << 3) | VARINT;
    at = putUint64(out, at, page.firstSequence);
  }
  if (page.hasMore) {
    out[at++] = (4 << 3) | VARINT;
    out[at++] = 1;
  }
  if (at !== out.length) throw new Error(`history encoder: wrote ${at} of ${out.length} bytes`);
  return out;
}
