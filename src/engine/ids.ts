import { randomBytes, randomFillSync } from "node:crypto";

/** A fresh epoch: 16 random hex characters, unguessable and unique in practice. */
export const newEpoch = (): string => randomBytes(8).toString("hex");

const HEX = Buffer.from("0123456789abcdef", "latin1");
/** Random bytes for this many ids at a time (as Node's own randomUUID caches its entropy). */
const BATCH = 1024;
const entropy = Buffer.alloc(16 * BATCH);
let used = BATCH;
const text = Buffer.alloc(36);

/**
 * A random (version 4) UUID, as one flat string.
 *
 * Node's crypto.randomUUID() joins 20 pieces with `+`, which V8 keeps as a
 * tree of cons strings until something reads the characters: about 480
 * bytes of heap per id instead of 56, for as long as the id lives, and
 * every message a room's history holds (and every idempotency record)
 * keeps its id. Written into one buffer and read out once, the id is a
 * single sequential string, and takes less time to make.
 */
export function newUuid(): string {
  if (used === BATCH) {
    randomFillSync(entropy);
    used = 0;
  }
  const at = used++ * 16;
  let out = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[out++] = 0x2d; // "-"
    let byte = entropy[at + i]!;
    if (i === 6) byte = (byte & 0x0f) | 0x40; // version 4
    else if (i === 8) byte = (byte & 0x3f) | 0x80; // RFC 4122 variant
    text[out++] = HEX[byte >> 4]!;
    text[out++] = HEX[byte & 0x0f]!;
  }
  return text.toString("latin1", 0, 36);
}

/** A message id: a random UUID. */
export const newMessageId = newUuid;
