import type { Dependency, StoredMessage } from "../engine/engine.js";
import type { CompactDependencies } from "../broker/compact-dependencies.js";
import { field, LEN, putString, putTimestamp, putUint64, putVarint, strLen, timestampLength, uint64Size, VARINT, varintSize } from "./wire-put.js";

/**
 * A published message's SubscribeEvent { message = 3 }, encoded once per
 * message for every stream: sizes first, then one buffer written in place.
 * protobuf-es's BinaryWriter (forks, a number array per chunk, a copy per
 * join) took ~7 µs a message on the 2-core bench machine, a sixth of the
 * broker's CPU per message at 100 subscribers; this writes the same bytes
 * (test/unit/wire-encoders.test.ts compares them) in a fraction of that.
 *
 * Field numbers are those of seqcast.v1.Message (proto/seqcast/v1/types.proto):
 * all below 16, so every tag is one byte. With `asEntry`, the event comes
 * wrapped as one `events` entry of SubscribeResponse (tag of field 1 and
 * length first), which is what a stream frame is made of.
 */
export function encodeMessageEvent(m: StoredMessage, compact?: CompactDependencies, asEntry = false): Uint8Array {
  const id = strLen(m.id);
  const room = strLen(m.room);
  const epoch = strLen(m.epoch);
  const sender = strLen(m.sender);
  const content = strLen(m.content);
  const clientMessageId = strLen(m.clientMessageId);
  const sequence = m.sequence;
  const dependencies = compact ? compact.explicit : m.dependencies;

  let size =
    field(id) + field(room) + field(epoch) + field(sender) + field(content) + field(clientMessageId) + field(m.payload.length, m.payload.length > 0);
  if (sequence !== 0n) size += 1 + uint64Size(sequence);
  for (const key in m.attributes) size += field(entryLength(key, m.attributes[key]!), true);
  size += field(timestampLength(m.timeMs), true);
  // Indexed loops: the lists are frozen, and for-of over a frozen array allocates an iterator result per entry.
  if (dependencies) for (let i = 0; i < dependencies.length; i++) size += field(positionLength(dependencies[i]!), true);
  if (compact?.same) size += 2;
  else if (compact) size += field(compact.refs.length, true);

  const event = 1 + varintSize(size) + size;
  const out = Buffer.allocUnsafe(asEntry ? 1 + varintSize(event) + event : event);
  let at = 0;
  if (asEntry) {
    out[at++] = (1 << 3) | LEN;
    at = putVarint(out, at, event);
  }
  out[at++] = (3 << 3) | LEN;
  at = putVarint(out, at, size);
  at = putString(out, at, 1, m.id, id);
  at = putString(out, at, 2, m.room, room);
  at = putString(out, at, 3, m.epoch, epoch);
  if (sequence !== 0n) {
    out[at++] = (4 << 3) | VARINT;
    at = putUint64(out, at, sequence);
  }
  at = putString(out, at, 5, m.sender, sender);
  at = putString(out, at, 6, m.content, content);
  if (m.payload.length > 0) {
    out[at++] = (7 << 3) | LEN;
    at = putVarint(out, at, m.payload.length);
    out.set(m.payload, at);
    at += m.payload.length;
  }
  for (const key in m.attributes) {
    const value = m.attributes[key]!;
    out[at++] = (8 << 3) | LEN;
    at = putVarint(out, at, entryLength(key, value));
    // A map entry has both its fields, empty or not (as protobuf-es writes it).
    at = putString(out, at, 1, key, strLen(key), true);
    at = putString(out, at, 2, value, strLen(value), true);
  }
  at = putTimestamp(out, at, 9, m.timeMs);
  at = putString(out, at, 10, m.clientMessageId, clientMessageId);
  if (dependencies)
    for (let i = 0; i < dependencies.length; i++) {
      const d = dependencies[i]!;
      out[at++] = (11 << 3) | LEN;
      at = putVarint(out, at, positionLength(d));
      at = putString(out, at, 1, d.room, strLen(d.room));
      at = putString(out, at, 2, d.epoch, strLen(d.epoch));
      if (d.sequence !== 0n) {
        out[at++] = (3 << 3) | VARINT;
        at = putUint64(out, at, d.sequence);
      }
    }
  if (compact?.same) {
    out[at++] = (13 << 3) | VARINT;
    out[at++] = 1;
  } else if (compact) {
    out[at++] = (12 << 3) | LEN;
    at = putVarint(out, at, compact.refs.length);
    out.set(compact.refs, at);
    at += compact.refs.length;
  }
  if (at !== out.length) throw new Error(`message encoder: wrote ${at} of ${out.length} bytes`);
  return out;
}

const entryLength = (key: string, value: string) => field(strLen(key), true) + field(strLen(value), true);

function positionLength(d: Dependency): number {
  return field(strLen(d.room)) + field(strLen(d.epoch)) + (d.sequence !== 0n ? 1 + uint64Size(d.sequence) : 0);
}
