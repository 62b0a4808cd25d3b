import { toBinary } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import type { Position, PresenceEntry } from "../engine/engine.js";
import type { SessionEvent } from "../broker/session.js";
import { PresenceEntrySchema } from "../../gen/es/seqcast/v1/types_pb.js";
import { toPbPresenceEntry } from "./convert.js";
import { LEN, putVarint, VARINT, varintSize } from "./wire-put.js";

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


function position(w: BinaryWriter, field: number, p: Position): void {
  w.tag(field, LEN).fork();
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
 * the entries after the longest prefix it shares with the last list seen and
 * copies one buffer, where copying an element at a time (a small array each,
 * scattered over the heap) was 11% of the broker's CPU while 10,000 sessions
 * joined rooms of 100. Keyed by the list's first entry (weakly: a run goes
 * when its first member's entry does); lists that share none (another room,
 * an engine that decodes entries afresh) start over, at the old cost.
 */
interface ListedRun {
  entries: PresenceEntry[];
  /** Where each entry's element ends in `bytes`. */
  ends: number[];
  bytes: Uint8Array;
}

const listedRuns = new WeakMap<PresenceEntry, ListedRun>();

/** Subscribed.present elements (tag, length, PresenceEntry each) of `present`, in order: a view valid until the next call. */
function listedBytes(present: readonly PresenceEntry[]): Uint8Array {
  if (present.length === 0) return EMPTY;
  let run = listedRuns.get(present[0]!);
  if (!run) listedRuns.set(present[0]!, (run = { entries: [], ends: [], bytes: EMPTY }));
  const { entries, ends } = run;
  let shared = 0;
  const common = Math.min(entries.length, present.length);
  while (shared < common && entries[shared] === present[shared]) shared++;
  entries.length = shared;
  ends.length = shared;
  let length = shared > 0 ? ends[shared - 1]! : 0;
  for (let i = shared; i < present.length; i++) {
    const element = listedEntry(present[i]!);
    if (length + element.length > run.bytes.length) {
      // Sized to the list at first (a room of one member stays small), doubling as it grows.
      const grown = new Uint8Array(Math.max(run.bytes.length * 2, length + element.length, present.length * element.length));
      grown.set(run.bytes.subarray(0, length));
      run.bytes = grown;
    }
    run.bytes.set(element, length);
    length += element.length;
    entries.push(present[i]!);
    ends.push(length);
  }
  return run.bytes.subarray(0, length);
}

/** seqcast.v1.PresenceEntry bytes, once per entry object (entries are shared by every list and event that carries them). */
export function presenceEntryBytes(entry: PresenceEntry, offline = false): Uint8Array {
  const cache = offline ? offlineEntries : onlineEntries;
  let bytes = cache.get(entry);
  if (!bytes) cache.set(entry, (bytes = toBinary(PresenceEntrySchema, toPbPresenceEntry(entry, offline))));
  return bytes;
}

const KIND_NUMBERS = { join: 1, leave: 2, update: 3 } as const;

function presenceEvent(w: BinaryWriter, field: number, room: string, kind: "join" | "leave" | "update", entry: PresenceEntry): void {
  w.tag(field, LEN).fork();
  if (room !== "") w.tag(1, LEN).string(room);
  w.tag(2, VARINT).int32(KIND_NUMBERS[kind]);
  w.tag(3, LEN).bytes(presenceEntryBytes(entry, kind === "leave"));
  w.join();
}

/** SubscribeEvent { presence = 4 }. */
export function encodePresenceEvent(room: string, kind: "join" | "leave" | "update", entry: PresenceEntry): Uint8Array {
  const w = new BinaryWriter();
  presenceEvent(w, 4, room, kind, entry);
  return w.finish();
}

/** SubscribeEvent { presence_changes = 9 }: the head by BinaryWriter, the (many) changes assembled in one allocation. */
export function encodePresenceChanges(
  room: string,
  changes: ReadonlyArray<{ kind: "join" | "leave" | "update"; entry: PresenceEntry; encoded?: Uint8Array; encodedFor?: string }>,
  asEntry = false,
): Uint8Array {
  const head = room !== "" ? new BinaryWriter().tag(1, LEN).string(room).finish() : EMPTY;
  const parts = new Array<Uint8Array>(changes.length);
  for (let i = 0; i < changes.length; i++) {
    const change = changes[i]!;
    // A change object remembers its bytes (PresenceChange.encoded).
    if (change.encoded === undefined || change.encodedFor !== room) {
      change.encoded = changeBytes(room, change.kind, change.entry);
      change.encodedFor = room;
    }
    parts[i] = change.encoded;
  }
  return wrapTagged(9, head, parts, asEntry);
}

/**
 * One PresenceChanges.changes element (tag, length, PresenceEvent). Encoded
 * once per change: encodePresenceChanges keeps it on the change object, which
 * goes into the room's shared batch and each late joiner's own.
 */
function changeBytes(room: string, kind: "join" | "leave" | "update", entry: PresenceEntry): Uint8Array {
  const bytes = encodePresenceEvent(room, kind, entry);
  bytes[0] = (2 << 3) | LEN; // field 4 of SubscribeEvent → field 2 of PresenceChanges, same bytes otherwise
  return bytes;
}

/** SubscribeEvent { subscribed = 2 }. */
export function encodeSubscribed(event: Omit<Extract<SessionEvent, { type: "subscribed" }>, "type">, asEntry = false): Uint8Array {
  const w = new BinaryWriter();
  if (event.room !== "") w.tag(1, LEN).string(event.room);
  position(w, 2, event.position);
  if (event.recovered) w.tag(3, VARINT).bool(true);
  if (event.resumedFrom) position(w, 4, event.resumedFrom);
  if (event.pattern) w.tag(5, LEN).string(event.pattern);
  return wrapTagged(2, w.finish(), [listedBytes(event.present ?? [])], asEntry);
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
  const event = 1 + varintSize(body) + body;
  const out = new Uint8Array((asEntry ? 1 + varintSize(event) : 0) + event);
  let at = 0;
  if (asEntry) {
    out[at++] = (1 << 3) | LEN;
    at = putVarint(out, at, event);
  }
  out[at++] = (outer << 3) | LEN;
  at = putVarint(out, at, body);
  out.set(head, at);
  at += head.length;
  for (const p of parts) {
    if (p.length < 64) for (let i = 0; i < p.length; i++) out[at + i] = p[i]!;
    else out.set(p, at);
    at += p.length;
  }
  return out;
}
