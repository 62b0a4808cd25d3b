// The idempotency keys' storage (memory-keys.ts): a segment of entries, a field an array each.
import { uuidOf } from "./ids.js";

/** Text bytes per entry a segment starts with: a UUID each for the client_message_id and the message id, packed (packUuid in ids.ts). */
const TEXT_PER_ENTRY = 32;
/** Entry flags: the client_message_id / the message id is stored as a packed UUID. */
export const CLIENT_ID_PACKED = 1;
export const ID_PACKED = 2;

/** A segment's keys: a field an array each, and their text (each key's client_message_id, then its message id). */
export class Segment {
  readonly hashes: Int32Array;
  /** The next older slot of the same bucket, + 1 (0: none). */
  readonly nexts: Float64Array;
  readonly times: Float64Array;
  /** Sequences as numbers: exact below 2^53, which a room's sequence never reaches. */
  readonly sequences: Float64Array;
  /** Where the entry's text starts in `text`. */
  readonly textAt: Uint32Array;
  readonly clientIdBytes: Uint16Array;
  readonly idBytes: Uint16Array;
  /** CLIENT_ID_PACKED, ID_PACKED. */
  readonly packed: Uint8Array;
  /** The key's room and epoch, as the room's keyId (memory-keys.ts): a number, not a reference for the collector to follow. */
  readonly roomIds: Float64Array;
  readonly senders: Array<string | undefined>;
  text: Uint8Array;
  textUsed = 0;

  constructor(readonly size: number) {
    this.hashes = new Int32Array(size);
    this.nexts = new Float64Array(size);
    this.times = new Float64Array(size);
    this.sequences = new Float64Array(size);
    this.textAt = new Uint32Array(size);
    this.clientIdBytes = new Uint16Array(size);
    this.idBytes = new Uint16Array(size);
    this.packed = new Uint8Array(size);
    this.roomIds = new Float64Array(size);
    this.senders = new Array<string | undefined>(size).fill(undefined);
    this.text = new Uint8Array(size * TEXT_PER_ENTRY);
  }

  get bytes(): number {
    const typed = [this.hashes, this.nexts, this.times, this.sequences, this.roomIds, this.textAt, this.clientIdBytes, this.idBytes, this.packed, this.text];
    return typed.reduce((sum, array) => sum + array.byteLength, 0) + 8 * this.size;
  }

  /** Whether entry i holds the client_message_id whose stored bytes (`n` of them, a packed UUID if `packed`) are at the start of `probe`. */
  holdsClientId(i: number, probe: Uint8Array, n: number, packed: boolean): boolean {
    if (this.clientIdBytes[i] !== n || (this.packed[i]! & CLIENT_ID_PACKED) !== (packed ? CLIENT_ID_PACKED : 0)) return false;
    const { text } = this;
    const at = this.textAt[i]!;
    for (let b = 0; b < n; b++) if (text[at + b] !== probe[b]) return false;
    return true;
  }

  /** Entry i's message id. */
  idOf(i: number): string {
    const at = this.textAt[i]! + this.clientIdBytes[i]!;
    if (this.packed[i]! & ID_PACKED) return uuidOf(this.text, at);
    return Buffer.from(this.text.buffer, this.text.byteOffset + at, this.idBytes[i]!).toString("utf8");
  }

  /** Room for `n` more bytes of text (a segment of long ids grows its own text). */
  reserveText(n: number): void {
    if (this.textUsed + n <= this.text.length) return;
    const text = new Uint8Array(Math.max(2 * this.text.length, this.textUsed + n));
    text.set(this.text.subarray(0, this.textUsed));
    this.text = text;
  }
}
