/**
 * HPACK (RFC 7541) for the broker's HTTP/2 connections (session.ts): a
 * decoder with the dynamic table (at most the 4,096 bytes the broker
 * advertises) and Huffman strings, and an encoder that never touches the
 * peer's dynamic table (so precomputed blocks stay valid). The Huffman code
 * table is RFC 7541 Appendix B, as hpack.js ships it.
 */
// @ts-expect-error hpack.js has no type declarations
import huffmanTable from "hpack.js/lib/hpack/huffman.js";
// @ts-expect-error hpack.js has no type declarations
import staticTable from "hpack.js/lib/hpack/static-table.js";

const STATIC: ReadonlyArray<readonly [string, string]> = (staticTable.table as Array<{ name: string; value: string }>).map((e) => [e.name, e.value] as const);

interface HuffmanNode {
  zero?: HuffmanNode;
  one?: HuffmanNode;
  symbol?: number;
}
const ROOT: HuffmanNode = {};
(huffmanTable.encode as Array<[number, number]>).forEach(([bits, code], symbol) => {
  let node = ROOT;
  for (let i = bits - 1; i >= 0; i--) node = (code >>> i) & 1 ? (node.one ??= {}) : (node.zero ??= {});
  node.symbol = symbol;
});

function huffmanDecode(buf: Buffer, start: number, end: number): string {
  let out = "";
  let node = ROOT;
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      const next = (byte >> bit) & 1 ? node.one : node.zero;
      if (!next) throw new HpackError("bad Huffman code");
      if (next.symbol === 256) throw new HpackError("EOS in a Huffman string");
      if (next.symbol !== undefined) {
        out += String.fromCharCode(next.symbol);
        node = ROOT;
      } else node = next;
    }
  }
  return out; // the padding (at most 7 one-bits) leaves a partial path behind, as RFC 7541 5.2 allows
}

export class HpackError extends Error {}

/** Huffman strings of a block kept for the next one (HpackDecoder.lastBytes). */
const MEMO_STRINGS = 16;
/** The longest Huffman string (encoded bytes) a decoder keeps, in `strings` or `lastBytes`: at most ~1 MiB a connection (a JWT is well under 2 KiB). */
const KEPT_STRING_BYTES = 2048;

export class HpackDecoder {
  private readonly table: Array<[string, string]> = [];
  private size = 0;
  private maxSize = 4096;
  /** Huffman strings repeat (a token, a path not indexed by the peer): decoded once. */
  private readonly strings = new Map<string, string>();
  /**
   * The Huffman strings of the last block, by their order in it, as bytes
   * and text. A client's next request repeats them in the same order
   * (nghttp2, which Node's http2 and h2load use, never indexes
   * `authorization`, nor a `:path` of 32 bytes or more): one comparison of
   * bytes (~70 ns for a 180-byte token here) finds each, where making the
   * key string and looking it up in `strings` took ~280 ns.
   */
  private readonly lastBytes: Buffer[] = [];
  private readonly lastTexts: string[] = [];
  /** Huffman strings read so far in the block being decoded. */
  private huffmanAt = 0;
  private at = 0;

  /** Calls onField for each header field of one complete header block. */
  decode(block: Buffer, onField: (name: string, value: string) => void): void {
    this.at = 0;
    this.huffmanAt = 0;
    while (this.at < block.length) {
      const first = block[this.at]!;
      if (first & 0x80) {
        const [name, value] = this.entry(this.int(block, 7));
        onField(name, value);
      } else if ((first & 0xe0) === 0x20) {
        const size = this.int(block, 5);
        if (size > 4096) throw new HpackError(`table size ${size} above the advertised 4096`);
        this.maxSize = size;
        this.evict();
      } else {
        const indexing = (first & 0x40) !== 0;
        const index = this.int(block, indexing ? 6 : 4);
        const name = index === 0 ? this.string(block) : this.entry(index)[0];
        const value = this.string(block);
        if (indexing) this.insert(name, value);
        onField(name, value);
      }
    }
  }

  private int(buf: Buffer, prefix: number): number {
    if (this.at >= buf.length) throw new HpackError("truncated integer");
    const mask = (1 << prefix) - 1;
    let value = buf[this.at++]! & mask;
    if (value < mask) return value;
    for (let shift = 0; ; shift += 7) {
      if (this.at >= buf.length || shift > 28) throw new HpackError("bad integer");
      const byte = buf[this.at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  }

  private string(buf: Buffer): string {
    const huffman = (buf[this.at]! & 0x80) !== 0;
    const length = this.int(buf, 7);
    const start = this.at;
    const end = start + length;
    if (end > buf.length) throw new HpackError("truncated string");
    this.at = end;
    if (!huffman) return buf.toString("latin1", start, end);
    const order = this.huffmanAt++;
    const last = this.lastBytes[order];
    if (last !== undefined && last.length === length && buf.compare(last, 0, length, start, end) === 0) return this.lastTexts[order]!;
    // Longer strings are decoded every time: what a connection keeps stays small (its header blocks may be 64 KiB).
    if (length > KEPT_STRING_BYTES) return huffmanDecode(buf, start, end);
    const key = buf.toString("latin1", start, end);
    let text = this.strings.get(key);
    if (text === undefined) {
      text = huffmanDecode(buf, start, end);
      if (this.strings.size < 256) this.strings.set(key, text);
    }
    if (order < MEMO_STRINGS) {
      this.lastBytes[order] = Buffer.from(buf.subarray(start, end));
      this.lastTexts[order] = text;
    }
    return text;
  }

  private entry(index: number): readonly [string, string] {
    if (index >= 1 && index <= STATIC.length) return STATIC[index - 1]!;
    const entry = this.table[index - STATIC.length - 1];
    if (!entry) throw new HpackError(`index ${index} is not in the table`);
    return entry;
  }

  private insert(name: string, value: string): void {
    this.table.unshift([name, value]);
    this.size += name.length + value.length + 32;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.maxSize) {
      const [name, value] = this.table.pop()!;
      this.size -= name.length + value.length + 32;
    }
  }
}

/** Static-table indexes (RFC 7541 Appendix A): of each name and value, and of each name alone. */
const STATIC_FIELD = new Map<string, number>();
const STATIC_NAME = new Map<string, number>();
STATIC.forEach(([name, value], i) => {
  STATIC_FIELD.set(`${name}\0${value}`, i + 1);
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i + 1);
});

/** Where blocks are encoded before they are copied out: grown as a block needs. */
let scratch = Buffer.allocUnsafe(4096);
let at = 0;

function room(n: number): void {
  if (at + n <= scratch.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, at + n));
  scratch.copy(bigger, 0, 0, at);
  scratch = bigger;
}

function putInt(value: number, prefix: number, flags: number): void {
  room(6);
  const mask = (1 << prefix) - 1;
  if (value < mask) return void (scratch[at++] = flags | value);
  scratch[at++] = flags | mask;
  for (value -= mask; value >= 0x80; value = Math.floor(value / 0x80)) scratch[at++] = (value % 0x80) | 0x80;
  scratch[at++] = value;
}

function putString(text: string): void {
  putInt(text.length, 7, 0);
  room(text.length);
  at += scratch.write(text, at, "latin1");
}

/**
 * A header block that never touches the peer's dynamic table, so it is valid
 * whatever that table holds and a block may be cached: a field of the static
 * table is indexed, a name of the static table is referenced, everything
 * else is a literal "without indexing", no Huffman. Values are latin1, as
 * HTTP field values are.
 */
export function literalBlock(fields: Iterable<readonly [string, string]>): Buffer {
  at = 0;
  for (const [name, value] of fields) {
    const full = STATIC_FIELD.get(`${name}\0${value}`);
    if (full !== undefined) {
      putInt(full, 7, 0x80);
      continue;
    }
    const named = STATIC_NAME.get(name);
    if (named !== undefined) putInt(named, 4, 0);
    else {
      putInt(0, 4, 0);
      putString(name);
    }
    putString(value);
  }
  return Buffer.from(scratch.subarray(0, at));
}
