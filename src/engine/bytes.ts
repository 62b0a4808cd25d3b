/**
 * Byte writers shared by the memory engine's records (memory-log.ts) and the
 * server's hand-written protobuf encoders (src/server/wire-put.ts re-exports
 * putVarint; ack-encoder.ts uses putShortAscii). Here, at the bottom of the
 * dependency order (server -> broker -> engine), so both can import them.
 */

/** A non-negative integer below 2^53 as a varint (protobuf's, and the records' lengths). */
export function putVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[at++] = n;
  return at;
}

/**
 * Writes `s` at `at` as one length byte and its characters, if every
 * character is ASCII (callers pass strings below 128 characters); returns
 * the offset after it, or -1 if one is not (what was written is then
 * garbage for the caller to overwrite). In JavaScript: for short strings
 * (ids, epochs, senders) cheaper than a native call. Used by the memory
 * engine's records and the publish acknowledgements' encoder.
 */
export function putShortAscii(out: Uint8Array, at: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return -1;
    out[at + 1 + i] = c;
  }
  out[at] = n;
  return at + 1 + n;
}
