/**
 * Where the memory engine keeps its retained messages' bytes: records
 * appended to large chunks (log-structured), shared by every room, each
 * found by its address: its chunk, offset and size in one number (address()
 * below), so that releasing a record reads nothing of it.
 *
 * Why not a buffer per room: with 10,000 rooms, growing each room's own
 * buffer cost an ArrayBuffer allocation and a copy every few messages
 * (~20% of a publish in a profile), and scattered the writes; appending to
 * one chunk is a bump of an offset, and the young generation of the
 * collector never sees the bytes.
 *
 * A record starts with a header: its size (uint32), its owner (uint32, the
 * log's number) and its sequence (float64), and takes a multiple of 8 bytes;
 * releasing a record subtracts its size from its chunk's live bytes, and a
 * chunk with none left is dropped.
 * A chunk a few long-lived records pin stays; once the chunks hold more than
 * twice the live bytes (plus a few chunks of slack), the emptiest chunk is
 * evacuated when a new one is started: its live records are copied to the
 * current chunk and their owners told the new address. Each evacuated chunk
 * is at most half live, so the copying stays below one byte per byte written.
 * The engine's sweep compacts too, for when nothing is being written.
 */
export interface RecordOwner {
  /** The address of the owner's record of `sequence`, if it still holds it (undefined: released). */
  addressOf(sequence: number): number | undefined;
  /** The record of `sequence` moved to `address`. */
  moved(sequence: number, address: number): void;
}

const HEADER = 16;
const CHUNK = 256 * 1024;
const SPARE = 2;

/**
 * An address is chunk × 2^29 + offset × 2^11 + size / 8: records start and
 * end at multiples of 8, so offsets (below 2^18, the largest chunk) take 15
 * bits and sizes (at most a quarter chunk in a shared chunk) 14; a record of
 * its own chunk has size 0 in its address (its header holds it). Below 2^53
 * that leaves 2^24 chunks: 4 TiB of 256 KiB chunks.
 *
 * With the size in the address, releasing a record touches only its chunk's
 * counters: at 10,000 rooms that read of the record's header was a read of
 * memory last touched hundreds of megabytes of records earlier, once per
 * publish (the oldest record of the room goes as a new one comes).
 */
const CHUNK_UNIT = 2 ** 29;
const OFFSET_UNIT = 2 ** 11;
const SIZE_UNITS = 2 ** 14;
const MAX_CHUNK = 2 ** 18;
const MAX_CHUNKS = 2 ** 24;

function packAddress(chunk: number, offset: number, size: number): number {
  return chunk * CHUNK_UNIT + offset * OFFSET_UNIT + (size < SIZE_UNITS * 8 ? size / 8 : 0);
}

function chunkOf(address: number): number {
  return Math.floor(address / CHUNK_UNIT);
}

function offsetOf(address: number): number {
  return Math.floor((address % CHUNK_UNIT) / (OFFSET_UNIT * 8)) * 8;
}

/** Where the body of the record at `address` starts in its chunk. */
export function bodyAt(address: number): number {
  return offsetOf(address) + HEADER;
}

export class RecordArena {
  private readonly chunks: Array<Buffer | undefined> = [];
  /** Live bytes per chunk, headers included. */
  private readonly live: number[] = [];
  /** Bytes written per chunk (where its records end). */
  private readonly used: number[] = [];
  private readonly freeChunks: number[] = [];
  /**
   * Chunks let go, kept for the next ones (at most SPARE): in steady state
   * a chunk empties as another starts, and a fresh allocation's first
   * touch of every page costs a page fault (about 9 us each on the bench
   * machine's VM, 64 a chunk).
   */
  private readonly spare: Buffer[] = [];
  private current = -1;
  private readonly owners: Array<RecordOwner | undefined> = [];
  private readonly freeOwners: number[] = [];
  private allocated = 0;
  private liveTotal = 0;
  private evacuating = false;
  /** Records above this size get a chunk of their own (exactly their size). */
  private readonly large: number;

  /** The chunk and offset the last reserve() gave, to write the record's body at (after its header). */
  target: Buffer = Buffer.alloc(0);
  at = 0;
  private reservedChunk = -1;

  /** Bytes held in chunks, and bytes of live records (headers included). */
  get stats(): { allocated: number; live: number; chunks: number } {
    return { allocated: this.allocated, live: this.liveTotal, chunks: this.chunks.length - this.freeChunks.length };
  }

  /** `chunk`: bytes per chunk (tests use small ones). */
  constructor(private readonly chunk = CHUNK) {
    if (chunk % 8 !== 0 || chunk > MAX_CHUNK) throw new RangeError(`memory arena: a chunk of ${chunk} bytes (a multiple of 8, at most ${MAX_CHUNK})`);
    this.large = chunk / 4;
  }

  register(owner: RecordOwner): number {
    const id = this.freeOwners.pop() ?? this.owners.length;
    this.owners[id] = owner;
    return id;
  }

  unregister(id: number): void {
    this.owners[id] = undefined;
    this.freeOwners.push(id);
  }

  /**
   * Room for a record of at most `size` body bytes: write the body from
   * `target[at]` on, then commit() where it ends. Nothing else may reserve
   * in between.
   */
  reserve(size: number): void {
    const total = HEADER + size;
    if (total > this.large) {
      this.reservedChunk = this.newChunk((total + 7) & ~7);
      this.at = HEADER;
      this.target = this.chunks[this.reservedChunk]!;
      return;
    }
    if (!this.fits(total)) {
      if (!this.evacuating && this.sparse()) this.evacuateEmptiest();
      if (!this.fits(total)) this.startChunk();
    }
    this.reservedChunk = this.current;
    this.target = this.chunks[this.current]!;
    this.at = this.used[this.current]! + HEADER;
  }

  /** Stores the record reserved, whose body ends at `end`, for `owner` and `sequence`; returns its address. */
  commit(end: number, owner: number, sequence: number): number {
    const chunk = this.reservedChunk;
    const start = this.at - HEADER;
    const size = (end - start + 7) & ~7;
    const bytes = this.target;
    bytes.writeUInt32LE(size, start);
    bytes.writeUInt32LE(owner, start + 4);
    bytes.writeDoubleLE(sequence, start + 8);
    this.used[chunk] = start + size;
    this.live[chunk]! += size;
    this.liveTotal += size;
    return packAddress(chunk, start, size);
  }

  /** The chunk holding the record at `address`. */
  buffer(address: number): Buffer {
    return this.chunks[chunkOf(address)]!;
  }

  release(address: number): void {
    const chunk = chunkOf(address);
    const size = (address % SIZE_UNITS) * 8 || this.chunks[chunk]!.readUInt32LE(offsetOf(address));
    this.liveTotal -= size;
    if ((this.live[chunk]! -= size) === 0 && chunk !== this.current) this.dropChunk(chunk);
  }

  /**
   * Evacuates chunks until they hold at most twice the live bytes (plus
   * slack), for when records were released in bulk and nothing is being
   * written that would do it a chunk at a time (the engine's sweep).
   */
  compact(): void {
    for (let n = this.chunks.length; n > 0 && this.sparse(); n--) if (!this.evacuateEmptiest()) return;
  }

  private sparse(): boolean {
    return this.allocated > 2 * this.liveTotal + 4 * this.chunk;
  }

  private fits(total: number): boolean {
    return this.current >= 0 && this.used[this.current]! + total <= this.chunk;
  }

  /** A new current chunk; the one it replaces is dropped if nothing in it is live any more. */
  private startChunk(): void {
    const previous = this.current;
    this.current = this.newChunk(this.chunk);
    if (previous >= 0 && this.live[previous] === 0) this.dropChunk(previous);
  }

  private newChunk(size: number): number {
    const chunk = this.freeChunks.pop() ?? this.chunks.length;
    if (chunk >= MAX_CHUNKS) throw new RangeError(`memory arena: more than ${MAX_CHUNKS} chunks`);
    this.chunks[chunk] = (size === this.chunk ? this.spare.pop() : undefined) ?? Buffer.allocUnsafeSlow(size);
    this.live[chunk] = 0;
    this.used[chunk] = 0;
    this.allocated += size;
    return chunk;
  }

  private dropChunk(chunk: number): void {
    const bytes = this.chunks[chunk]!;
    this.allocated -= bytes.length;
    if (bytes.length === this.chunk && this.spare.length < SPARE) this.spare.push(bytes);
    this.chunks[chunk] = undefined;
    this.freeChunks.push(chunk);
  }

  /** Copies the live records of the chunk with the fewest live bytes (not the current one) to the current chunk. */
  private evacuateEmptiest(): boolean {
    let emptiest = -1;
    for (let chunk = 0; chunk < this.chunks.length; chunk++) {
      // Not the current chunk, nor one whose every record is live (moving it would free nothing).
      if (chunk === this.current || !this.chunks[chunk] || this.live[chunk] === this.used[chunk]) continue;
      if (emptiest < 0 || this.live[chunk]! < this.live[emptiest]!) emptiest = chunk;
    }
    if (emptiest < 0) return false;
    this.evacuating = true;
    try {
      const from = this.chunks[emptiest]!;
      const end = this.used[emptiest]!;
      for (let at = 0; at < end; ) {
        const size = from.readUInt32LE(at);
        if (size < HEADER) throw new Error(`memory arena: no record at ${at} of chunk ${emptiest}`);
        const ownerId = from.readUInt32LE(at + 4);
        const owner = this.owners[ownerId];
        const sequence = from.readDoubleLE(at + 8);
        const address = packAddress(emptiest, at, size);
        if (owner && owner.addressOf(sequence) === address) {
          this.reserve(size - HEADER);
          from.copy(this.target, this.at - HEADER, at, at + size);
          const moved = this.commit(this.at - HEADER + size, ownerId, sequence);
          owner.moved(sequence, moved);
          this.release(address);
        }
        at += size;
      }
      // Every live record moved: release() dropped the chunk with its last one (or it had none).
      if (this.chunks[emptiest]) this.dropChunk(emptiest);
    } finally {
      this.evacuating = false;
    }
    return true;
  }
}
