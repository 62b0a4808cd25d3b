/**
 * Sizing and writing protobuf fields in place, for the hand-written encoders
 * of the hot paths (message-encoder.ts, ack-encoder.ts, wire-encoders.ts): every size is
 * computed first, then the bytes go into one buffer, with no writer object,
 * fork or copy per nested message.
 */

import { putVarint } from "../engine/bytes.js";

export const LEN = 2;
export const VARINT = 0;
const TWO_POW_53 = 2n ** 53n;

/** Strings up to this length are counted and written in JS: a native call per short string cost more than the rest. */
const SHORT = 64;

/** UTF-8 length (short ASCII strings, which ids, rooms and epochs are, without a native call). */
export function strLen(s: string): number {
  const n = s.length;
  if (n > SHORT) return Buffer.byteLength(s, "utf8");
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, "utf8");
  return n;
}

/** A length-delimited field of `length` bytes, if present (non-empty, or `present`). */
export const field = (length: number, present = length > 0) => (present ? 1 + varintSize(length) + length : 0);

/** A string field (fields below 16: one-byte tags) whose UTF-8 length strLen() gave; written when present. */
export function putString(out: Buffer, at: number, fieldNumber: number, s: string, length: number, present = length > 0): number {
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
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

export { putVarint };

/** uint64 as a varint (values from 2^53 on as BigInt). */
export const uint64Size = (n: bigint) => (n < TWO_POW_53 ? varintSize(Number(n)) : bigVarintSize(BigInt.asUintN(64, n)));

export function putUint64(out: Buffer, at: number, n: bigint): number {
  return n < TWO_POW_53 ? putVarint(out, at, Number(n)) : putBigVarint(out, at, BigInt.asUintN(64, n));
}

/** int64 as protobuf writes it: a negative number is its 64-bit two's complement (10 bytes). */
export const int64Size = (n: number) => (n >= 0 ? varintSize(n) : 10);

export function putInt64(out: Buffer, at: number, n: number): number {
  return n >= 0 ? putVarint(out, at, n) : putBigVarint(out, at, BigInt.asUintN(64, BigInt(n)));
}

/** A google.protobuf.Timestamp of `ms` milliseconds since the epoch: its message's length (seconds, nanos as timestampFromMs splits them). */
export function timestampLength(ms: number): number {
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms - seconds * 1000) * 1_000_000;
  return (seconds !== 0 ? 1 + int64Size(seconds) : 0) + (nanos !== 0 ? 1 + varintSize(nanos) : 0);
}

/** A Timestamp field (written even when zero, as protobuf-es writes a set message field). */
export function putTimestamp(out: Buffer, at: number, fieldNumber: number, ms: number): number {
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms - seconds * 1000) * 1_000_000;
  out[at++] = (fieldNumber << 3) | LEN;
  at = putVarint(out, at, timestampLength(ms));
  if (seconds !== 0) {
    out[at++] = (1 << 3) | VARINT;
    at = putInt64(out, at, seconds);
  }
  if (nanos !== 0) {
    out[at++] = (2 << 3) | VARINT;
    at = putVarint(out, at, nanos);
  }
  return at;
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
