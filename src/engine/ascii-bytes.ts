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
