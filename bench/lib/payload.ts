import { performance } from "node:perf_hooks";

/**
 * The bench's messages, the same bytes for every system: u32 LE index at 0
 * (the publisher's count, for systems without a sequence), u8 phase at 4,
 * f64 LE send time (performance.now() of this process) at 8, filler after.
 */
export const HEADER_BYTES = 16;

const FILLER = (() => {
  const bytes = new Uint8Array(4096);
  for (let i = 0; i < bytes.length; i++) bytes[i] = 97 + (i % 26);
  return bytes;
})();

export function makePayload(size: number, index: number, phase: number): Uint8Array {
  const bytes = new Uint8Array(size);
  bytes.set(FILLER.subarray(HEADER_BYTES, size), HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, index, true);
  view.setUint8(4, phase);
  view.setFloat64(8, performance.now(), true);
  return bytes;
}

export interface PayloadHeader {
  index: number;
  phase: number;
  sentAt: number;
}

/** Scratch for the send time's 8 bytes: reading a header allocates nothing (a DataView per delivery showed in the load generator's profile). */
const timeBytes = new Uint8Array(8);
const timeValue = new Float64Array(timeBytes.buffer);

export function readPayload(payload: Uint8Array): PayloadHeader {
  return { index: payloadIndex(payload), phase: payload[4]!, sentAt: payloadSentAt(payload) };
}

export function payloadIndex(payload: Uint8Array): number {
  return (payload[0]! | (payload[1]! << 8) | (payload[2]! << 16) | (payload[3]! << 24)) >>> 0;
}

export function payloadSentAt(payload: Uint8Array): number {
  for (let i = 0; i < 8; i++) timeBytes[i] = payload[8 + i]!;
  return timeValue[0]!;
}
