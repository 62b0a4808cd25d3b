/** Old slots copied per add while a doubling's keys move (KeyIndex): 8 ends the move within a quarter of the adds before the next doubling. */
export const MIGRATE_SLOTS = 8;

/**
 * Open addressing with linear probing: hash → key_id, add-only (a
 * generation is dropped whole). Grows at 50% load. A key_id is kept as its
 * distance from the generation's first (8 bytes a slot with the hash): the
 * keys of one generation are recorded within a window, far fewer than 2^32.
 *
 * Doubling does not copy every key at once: at two million keys that was
 * one add of ~0.35 s, a pause of the event loop for every stream. The
 * arrays before stay as they are (nothing is ever removed, so their probe
 * chains stay whole) and their slots are copied to the doubled arrays
 * MIGRATE_SLOTS per add, in order; new keys go to the doubled arrays. A
 * lookup probes the doubled arrays, then the old ones, skipping the old
 * slots already copied. Slot numbers from `keys.length` on name the old
 * arrays' slots. The old arrays hold L/2 keys in L slots, and the doubled
 * ones (2L slots) double again after L/2 more adds: copying MIGRATE_SLOTS
 * (more than 2) per add ends the move well before that.
 */
export class KeyIndex {
  private hashes = new Int32Array(1024);
  /** key_id − base + 1 per slot; 0 = empty. */
  private keys = new Uint32Array(1024);
  private mask = 1023;
  /** While a doubling's keys move (see above): the arrays before it, and the first of their slots not copied yet. */
  private oldHashes: Int32Array | undefined;
  private oldKeys: Uint32Array | undefined;
  private copied = 0;
  /** The smallest key_id added (the first, as key_ids only grow; rebase() covers any other order). */
  private base = -1;
  size = 0;

  constructor(readonly startedMs: number) {}

  get bytes(): number {
    return this.hashes.byteLength + this.keys.byteLength + (this.oldHashes?.byteLength ?? 0) + (this.oldKeys?.byteLength ?? 0);
  }

  /** Whether a doubling's keys are still moving (for tests). */
  get moving(): boolean {
    return this.oldKeys !== undefined;
  }

  add(hash: number, key: number): void {
    if (this.base < 0) this.base = key;
    if (key < this.base) this.rebase(key);
    if (key - this.base + 1 > 0xffffffff) throw new RangeError(`key_id ${key} is 2^32 past this generation's first (${this.base})`);
    if (this.oldKeys !== undefined) this.migrate(MIGRATE_SLOTS);
    if ((this.size + 1) * 2 > this.keys.length) this.grow();
    this.put(hash, key - this.base + 1);
    this.size++;
  }

  /** Copies up to `slots` of the old arrays' slots to the doubled ones (a generation no longer added to calls it too). */
  migrate(slots: number): void {
    const { oldHashes, oldKeys } = this;
    if (oldHashes === undefined || oldKeys === undefined) return;
    const end = Math.min(this.copied + slots, oldKeys.length);
    for (let i = this.copied; i < end; i++) if (oldKeys[i] !== 0) this.put(oldHashes[i]!, oldKeys[i]!);
    this.copied = end;
    if (end === oldKeys.length) {
      this.oldHashes = undefined;
      this.oldKeys = undefined;
    }
  }

  /** The first slot holding `hash`, or -1. */
  first(hash: number): number {
    const slot = this.scan(hash & this.mask, hash);
    return slot >= 0 ? slot : this.scanOld(hash, hash);
  }

  /** The next slot after `slot` holding `hash`, or -1. */
  next(slot: number, hash: number): number {
    const length = this.keys.length;
    if (slot >= length) return this.scanOld(slot - length + 1, hash);
    const found = this.scan((slot + 1) & this.mask, hash);
    return found >= 0 ? found : this.scanOld(hash, hash);
  }

  keyAt(slot: number): number {
    const length = this.keys.length;
    return (slot < length ? this.keys[slot]! : this.oldKeys![slot - length]!) - 1 + this.base;
  }

  private scan(slot: number, hash: number): number {
    for (let i = slot; ; i = (i + 1) & this.mask) {
      if (this.keys[i] === 0) return -1;
      if (this.hashes[i] === hash) return i;
    }
  }

  /** From the old arrays' slot `from` (masked): the next one holding `hash` not copied yet, as a slot number past `keys`, or -1. */
  private scanOld(from: number, hash: number): number {
    const { oldHashes, oldKeys } = this;
    if (oldHashes === undefined || oldKeys === undefined) return -1;
    const mask = oldKeys.length - 1;
    for (let i = from & mask; ; i = (i + 1) & mask) {
      if (oldKeys[i] === 0) return -1;
      if (oldHashes[i] === hash && i >= this.copied) return this.keys.length + i;
    }
  }

  private put(hash: number, stored: number): void {
    let i = hash & this.mask;
    while (this.keys[i] !== 0) i = (i + 1) & this.mask;
    this.hashes[i] = hash;
    this.keys[i] = stored;
  }

  /** A key below the base: every stored distance moves up (one pass; key_ids come in order, so this is not expected). */
  private rebase(key: number): void {
    const shift = this.base - key;
    for (const keys of this.oldKeys ? [this.keys, this.oldKeys] : [this.keys])
      for (let i = 0; i < keys.length; i++) if (keys[i] !== 0) keys[i] += shift;
    this.base = key;
  }

  private grow(): void {
    // Not expected (the move ends long before), but a move in progress ends before the next starts.
    if (this.oldKeys !== undefined) this.migrate(Infinity);
    this.oldHashes = this.hashes;
    this.oldKeys = this.keys;
    this.copied = 0;
    this.hashes = new Int32Array(this.oldKeys.length * 2);
    this.keys = new Uint32Array(this.oldKeys.length * 2);
    this.mask = this.keys.length - 1;
  }
}
