import type { Dependency, StoredMessage } from "../engine/engine.js";
import type { CompactDependencies } from "../broker/compact-dependencies.js";

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
  const seconds = Math.floor(m.timeMs / 1000);
  const nanos = (m.timeMs - seconds * 1000) * 1_000_000;
  const timeLength = (seconds !== 0 ? 1 + int64Size(seconds) : 0) + (nanos !== 0 ? 1 + varintSize(nanos) : 0);
  const dependencies = compact ? compact.explicit : m.dependencies;

  let size =
    field(id) + field(room) + field(epoch) + field(sender) + field(content) + field(clientMessageId) + field(m.payload.length, m.payload.length > 0);
  if (sequence !== 0n) size += 1 + uint64Size(sequence);
  for (const key in m.attributes) size += field(entryLength(key, m.attributes[key]!), true);
  size += field(timeLength, true);
  if (dependencies) for (const d of dependencies) size += field(positionLength(d), true);
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
  out[at++] = (9 << 3) | LEN;
  at = putVarint(out, at, timeLength);
  if (seconds !== 0) {
    out[at++] = (1 << 3) | VARINT;
    at = putInt64(out, at, seconds);
  }
  if (nanos !== 0) {
    out[at++] = (2 << 3) | VARINT;
    at = putVarint(out, at, nanos);
  }
  at = putString(out, at, 10, m.clientMessageId, clientMessageId);
  if (dependencies)
    for (const d of dependencies) {
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

const LEN = 2;
const VARINT = 0;
const TWO_POW_53 = 2n ** 53n;

/**
 * UTF-8 length. Short ASCII strings (ids, rooms, epochs, names) are counted
 * and written in JS: a native call per string cost more than the rest of
 * the message.
 */
function strLen(s: string): number {
  const n = s.length;
  if (n > SHORT) return Buffer.byteLength(s, "utf8");
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, "utf8");
  return n;
}

const SHORT = 64;

/** A length-delimited field of `length` bytes, if present (non-empty, or `present`). */
const field = (length: number, present = length > 0) => (present ? 1 + varintSize(length) + length : 0);

const entryLength = (key: string, value: string) => field(strLen(key), true) + field(strLen(value), true);

function positionLength(d: Dependency): number {
  return field(strLen(d.room)) + field(strLen(d.epoch)) + (d.sequence !== 0n ? 1 + uint64Size(d.sequence) : 0);
}

function putString(out: Buffer, at: number, fieldNumber: number, s: string, length: number, present = length > 0): number {
  if (!present) return at;
  out[at++] = (fieldNumber << 3) | LEN;
  at = putVarint(out, at, length);
  if (length === s.length && length <= SHORT) {
    // ASCII (strLen counted one byte per character).
    for (let i = 0; i < length; i++) out[at + i] = s.charCodeAt(i);
    return at + length;
  }
  return at + out.write(s, at, length, "utf8");
}

/** Size of a non-negative integer below 2^53 as a varint. */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

function putVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[at++] = n;
  return at;
}

const uint64Size = (n: bigint) => (n < TWO_POW_53 ? varintSize(Number(n)) : bigVarintSize(BigInt.asUintN(64, n)));

function putUint64(out: Buffer, at: number, n: bigint): number {
  return n < TWO_POW_53 ? putVarint(out, at, Number(n)) : putBigVarint(out, at, BigInt.asUintN(64, n));
}

/** int64 as protobuf writes it: a negative number is its 64-bit two's complement (10 bytes). */
const int64Size = (n: number) => (n >= 0 ? varintSize(n) : 10);

function putInt64(out: Buffer, at: number, n: number): number {
  return n >= 0 ? putVarint(out, at, n) : putBigVarint(out, at, BigInt.asUintN(64, BigInt(n)));
}

function bigVarintSize(n: bigint): number {
  let size = 1;
  while (n >= 0x80n) {
    n >>= 7n;
    size++;
  }
  return size;
}

function putBigVarint(out: Buffer, at: number, n: bigint): number {
  while (n >= 0x80n) {
    out[at++] = Number(n & 0x7fn) | 0x80;
    n >>= 7n;
  }
  out[at++] = Number(n);
  return at;
}
