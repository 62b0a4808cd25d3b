import { BinaryWriter } from "@bufbuild/protobuf/wire";
import type { Position, PresenceEntry } from "../engine/engine.js";
import type { SessionEvent } from "../broker/session.js";
import { field, LEN, putString, putTimestamp, putVarint, strLen, timestampLength, VARINT, varintSize } from "./wire-put.js";

/**
 * Hand-written encoders for the messages on the hot paths: a published
 * message (once per publish: message-encoder.ts), its acknowledgement (once
 * per publish on a PublishStream), and presence (lists at join, batches of changes). They
 * write exactly what protobuf-es would (test/unit/wire-encoders.test.ts
 * compares byte for byte) without building message objects first: that
 * object churn was a third of the broker's CPU when 10,000 sessions joined.
 *
 * Field numbers are those of proto/seqcast/v1/*.proto; the contract only
 * grows, so they never change under these functions.
 */


function position(w: BinaryWriter, fieldNumber: number, p: Position): void {
  w.tag(fieldNumber, LEN).fork();
  if (p.epoch !== "") w.tag(1, LEN).string(p.epoch);
  if (p.sequence !== 0n) w.tag(2, VARINT).uint64(p.sequence);
  w.join();
}

// ---- presence ------------------------------------------------------------

const EMPTY = new Uint8Array(0);

const onlineEntries = new WeakMap<PresenceEntry, Uint8Array>();
const offlineEntries = new WeakMap<PresenceEntry, Uint8Array>();
const listedEntries = new WeakMap<PresenceEntry, Uint8Array>();

/** An entry as one element of Subscribed.present: tag of field 6, length, bytes; once per entry object. */
function listedEntry(entry: PresenceEntry): Uint8Array {
  let bytes = listedEntries.get(entry);
  if (!bytes) {
    const body = presenceEntryBytes(entry);
    bytes = new Uint8Array(1 + varintSize(body.length) + body.length);
    bytes[0] = (6 << 3) | LEN;
    bytes.set(body, putVarint(bytes, 1, body.length));
    listedEntries.set(entry, bytes);
  }
  return bytes;
}

/**
 * A present list as the bytes of its Subscribed.present elements, kept from
 * one join to the next: a room's list changes little between two joins (in
 * a mass join, by the one entry of the session before), so a join appends
 * the entries after the longest prefix it shares with the last list seen,
 * where copying an element at a time (a small array each, scattered over the
 * heap) was 11% of the broker's CPU while 10,000 sessions joined rooms of
 * 100. Keyed by the list's first entry (weakly: a run goes when its first
 * member's entry does); lists that share none (another room, an engine that
 * decodes entries afresh) start over, at the old cost.
 *
 * Bytes once handed out are never rewritten: a list that differs from the
 * last one before its end (someone left) continues in a new buffer. So a
 * stream can send the list as it is, without copying it (subscribeFrame in
 * event-encoding.ts), and a view stays valid while a write holds it.
 */
interface ListedRun {
  entries: PresenceEntry[];
  /** Where each entry's element ends in `bytes`. */
  ends: number[];
  bytes: Uint8Array;
  /** How far into `bytes` a returned view reached: those bytes are not written again. */
  handedOut: number;
}

const listedRuns = new WeakMap<PresenceEntry, ListedRun>();

/** Subscribed.present elements (tag, length, PresenceEntry each) of `present`, in order: a view that never changes. */
function listedBytes(present: readonly PresenceEntry[]): Uint8Array {
  if (present.length === 0) return EMPTY;
  let run = listedRuns.get(present[0]!);
  if (!run) listedRuns.set(present[0]!, (run = { entries: [], ends: [], bytes: EMPTY, handedOut: 0 }));
  const { entries, ends } = run;
  let shared = 0;
  const common = Math.min(entries.length, present.length);
  while (shared < common && entries[shared] === present[shared]) shared++;
  entries.length = shared;
  ends.length = shared;
  let length = shared > 0 ? ends[shared - 1]! : 0;
  for (let i = shared; i < present.length; i++) {
    const element = listedEntry(present[i]!);
    // Past the end, or over bytes an earlier view holds (the list differs before the last one's end): a new buffer.
    const rewrite = length < run.handedOut;
    if (rewrite || length + element.length > run.bytes.length) {
      // Sized to the list at first (a room of one member stays small), doubling as it grows.
      const grown = new Uint8Array(Math.max(rewrite ? 0 : run.bytes.length * 2, length + element.length, present.length * element.length));
      grown.set(run.bytes.subarray(0, length));
      run.bytes = grown;
      run.handedOut = 0;
    }
    run.bytes.set(element, length);
    length += element.length;
    entries.push(present[i]!);
    ends.push(length);
  }
  if (length > run.handedOut) run.handedOut = length;
  return run.bytes.subarray(0, length);
}

/** seqcast.v1.PresenceEntry bytes, once per entry object (entries are shared by every list and event that carries them). */
export function presenceEntryBytes(entry: PresenceEntry, offline = false): Uint8Array {
  const cache = offline ? offlineEntries : onlineEntries;
  let bytes = cache.get(entry);
  if (!bytes) cache.set(entry, (bytes = writePresenceEntry(entry, offline)));
  return bytes;
}

/** seqcast.v1.PresenceState numbers; a leave's entry says OFFLINE. */
const STATE_NUMBERS = { online: 1, away: 2 } as const;
const OFFLINE = 3;

function writePresenceEntry(entry: PresenceEntry, offline: boolean): Uint8Array {
  const user = strLen(entry.user);
  const sessionId = strLen(entry.sessionId);
  const device = strLen(entry.device);
  const state = offline ? OFFLINE : STATE_NUMBERS[entry.state];
  const size =
    field(user) +
    field(sessionId) +
    field(device) +
    2 +
    field(timestampLength(entry.joinedAtMs), true) +
    field(timestampLength(entry.sinceMs), true) +
    field(timestampLength(entry.lastActiveMs), true);
  const out = Buffer.allocUnsafe(size);
  let at = putString(out, 0, 1, entry.user, user);
  at = putString(out, at, 2, entry.sessionId, sessionId);
  at = putString(out, at, 3, entry.device, device);
  out[at++] = (4 << 3) | VARINT;
  out[at++] = state;
  at = putTimestamp(out, at, 5, entry.joinedAtMs);
  at = putTimestamp(out, at, 6, entry.sinceMs);
  at = putTimestamp(out, at, 7, entry.lastActiveMs);
  if (at !== size) throw new Error(`presence entry encoder: wrote ${at} of ${size} bytes`);
  return out;
}

const KIND_NUMBERS = { join: 1, leave: 2, update: 3 } as const;

/** A PresenceEvent { room = 1, kind = 2, entry = 3 } as field `outer` (tag, length, message). */
function presenceEvent(outer: number, room: string, kind: "join" | "leave" | "update", entry: PresenceEntry): Uint8Array {
  const roomLength = strLen(room);
  const entryBytes = presenceEntryBytes(entry, kind === "leave");
  const body = field(roomLength) + 2 + field(entryBytes.length, true);
  const out = Buffer.allocUnsafe(1 + varintSize(body) + body);
  out[0] = (outer << 3) | LEN;
  let at = putVarint(out, 1, body);
  at = putString(out, at, 1, room, roomLength);
  out[at++] = (2 << 3) | VARINT;
  out[at++] = KIND_NUMBERS[kind];
  out[at++] = (3 << 3) | LEN;
  at = putVarint(out, at, entryBytes.length);
  out.set(entryBytes, at);
  return out;
}

/** SubscribeEvent { presence = 4 }. */
export function encodePresenceEvent(room: string, kind: "join" | "leave" | "update", entry: PresenceEntry): Uint8Array {
  return presenceEvent(4, room, kind, entry);
}

type Change = { kind: "join" | "leave" | "update"; entry: PresenceEntry; encoded?: Uint8Array; encodedFor?: string };

/** SubscribeEvent { presence_changes = 9 }. */
export function encodePresenceChanges(room: string, changes: readonly Change[], asEntry = false): Uint8Array {
  return wrapTagged(9, presenceChangesFields(room), [changesBytes(room, changes)], asEntry);
}

/** A presence_changes event as an `events` entry in two pieces, the changes as a batch's shared bytes (see changesBytes). */
export function presenceChangesEntryPieces(room: string, changes: readonly Change[]): [head: Uint8Array, changes: Uint8Array] {
  return entryPieces(9, presenceChangesFields(room), changesBytes(room, changes));
}

/** PresenceChanges' fields before its changes. */
function presenceChangesFields(room: string): Uint8Array {
  return room !== "" ? new BinaryWriter().tag(1, LEN).string(room).finish() : EMPTY;
}

/**
 * A batch's PresenceChanges.changes elements in one buffer, kept per batch
 * (weakly, by its last change) and never rewritten. A member that went live
 * during a turn gets the tail of the room's batch of that turn as its own
 * (presence-batches.ts): in a mass join, each joiner's tail is found here as
 * a view, where encoding every tail anew copied O(joins²) changes a turn.
 */
interface ChangesRun {
  room: string;
  changes: readonly Change[];
  /** Where each change's element starts in `bytes`. */
  starts: number[];
  bytes: Uint8Array;
}

const changesRuns = new WeakMap<Change, ChangesRun>();

function changesBytes(room: string, changes: readonly Change[]): Uint8Array {
  const last = changes[changes.length - 1];
  if (last === undefined) return EMPTY;
  const run = changesRuns.get(last);
  const offset = run ? run.changes.length - changes.length : -1;
  if (run && run.room === room && offset >= 0) {
    let i = 0;
    while (i < changes.length && run.changes[offset + i] === changes[i]) i++;
    if (i === changes.length) return run.bytes.subarray(run.starts[offset]);
  }
  const starts = new Array<number>(changes.length);
  let length = 0;
  for (let i = 0; i < changes.length; i++) {
    const change = changes[i]!;
    // A change object remembers its bytes (PresenceChange.encoded).
    if (change.encoded === undefined || change.encodedFor !== room) {
      change.encoded = changeBytes(room, change.kind, change.entry);
      change.encodedFor = room;
    }
    starts[i] = length;
    length += change.encoded.length;
  }
  const bytes = new Uint8Array(length);
  for (let i = 0; i < changes.length; i++) bytes.set(changes[i]!.encoded!, starts[i]);
  changesRuns.set(last, { room, changes: changes.slice(), starts, bytes });
  return bytes;
}

/**
 * One PresenceChanges.changes element (tag, length, PresenceEvent). Encoded
 * once per change: changesBytes keeps it on the change object, which goes
 * into the room's shared batch and each late joiner's own.
 */
function changeBytes(room: string, kind: "join" | "leave" | "update", entry: PresenceEntry): Uint8Array {
  return presenceEvent(2, room, kind, entry);
}

type Subscribed = Omit<Extract<SessionEvent, { type: "subscribed" }>, "type">;

/** Subscribed's fields before its present list. */
function subscribedFields(event: Subscribed): Uint8Array {
  const w = new BinaryWriter();
  if (event.room !== "") w.tag(1, LEN).string(event.room);
  position(w, 2, event.position);
  if (event.recovered) w.tag(3, VARINT).bool(true);
  if (event.resumedFrom) position(w, 4, event.resumedFrom);
  if (event.pattern) w.tag(5, LEN).string(event.pattern);
  return w.finish();
}

/** SubscribeEvent { subscribed = 2 }. */
export function encodeSubscribed(event: Subscribed, asEntry = false): Uint8Array {
  return wrapTagged(2, subscribedFields(event), [listedBytes(event.present ?? [])], asEntry);
}

/**
 * A subscribed event as an `events` entry of SubscribeResponse in two
 * pieces that follow each other on the wire: everything up to the present
 * list, and the list itself as the room's shared bytes (never rewritten, see
 * listedBytes), which a stream can send without copying.
 */
export function subscribedEntryPieces(event: Subscribed): [head: Uint8Array, list: Uint8Array] {
  return entryPieces(2, subscribedFields(event), listedBytes(event.present ?? []));
}

/** The SubscribeEvent oneof field `outer` holding `fields` then `shared`, as an `events` entry: everything before `shared`, and `shared` itself. */
function entryPieces(outer: number, fields: Uint8Array, shared: Uint8Array): [head: Uint8Array, shared: Uint8Array] {
  const body = fields.length + shared.length;
  const head = new Uint8Array(taggedSize(body, true) - shared.length);
  head.set(fields, putTags(head, outer, body, true));
  return [head, shared];
}

/**
 * The SubscribeEvent oneof field `outer` holding `head` followed by `parts`
 * (fields already tagged and length-prefixed): one buffer sized in advance,
 * so a list of a thousand entries is copied once. With `asEntry`, wrapped
 * once more as an entry of SubscribeResponse.events (field 1), which is how
 * the stream writer wants it (see event-encoding.ts).
 */
function wrapTagged(outer: number, head: Uint8Array, parts: Uint8Array[], asEntry: boolean): Uint8Array {
  let body = head.length;
  for (const p of parts) body += p.length;
  const out = new Uint8Array(taggedSize(body, asEntry));
  let at = putTags(out, outer, body, asEntry);
  out.set(head, at);
  at += head.length;
  for (const p of parts) {
    if (p.length < 64) for (let i = 0; i < p.length; i++) out[at + i] = p[i]!;
    else out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Bytes of a oneof field of SubscribeEvent holding `body` bytes: tag, length, body; with `asEntry`, inside an `events` entry. */
function taggedSize(body: number, asEntry: boolean): number {
  const event = 1 + varintSize(body) + body;
  return (asEntry ? 1 + varintSize(event) : 0) + event;
}

/** Writes the tags and lengths that open taggedSize(body, asEntry) at the start of `out`; returns where the body begins. */
function putTags(out: Uint8Array, outer: number, body: number, asEntry: boolean): number {
  let at = 0;
  if (asEntry) {
    out[at++] = (1 << 3) | LEN;
    at = putVarint(out, at, 1 + varintSize(body) + body);
  }
  out[at++] = (outer << 3) | LEN;
  return putVarint(out, at, body);
}
