import { create, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import type { PresenceEntry, StoredMessage } from "../engine/engine.js";
import type { SessionEvent } from "../broker/session.js";
import { SubscribeEventSchema, SubscribeResponseSchema, type SubscribeResponse } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { toPbEvent } from "./convert.js";
import { encodePresenceChanges, encodePresenceEvent, encodeSubscribed, presenceChangesEntryPieces, subscribedEntryPieces } from "./wire-encoders.js";
import { encodeMessageEvent } from "./message-encoder.js";

// ---- encode once --------------------------------------------------------
//
// A published message fans out to every subscriber's stream. Serializing the
// same SubscribeEvent for each of them would be the dominant cost of
// fan-out, so for binary codecs each event is encoded once, as the wire
// bytes of one `events` entry of SubscribeResponse (tag of field 1, length,
// SubscribeEvent bytes), and a stream message is the concatenation of its
// events' entries: on the wire that is exactly `repeated SubscribeEvent
// events = 1` (pubsub.proto warns that the field number is relied on here).
// JSON codecs take the field-by-field path (toPbResponse in convert.ts).

/** Tag of SubscribeResponse.events: field 1, length-delimited. */
const EVENTS_TAG = (1 << 3) | WireType.LengthDelimited;
const EVENTS_FIELD = 1;

const messageEntries = new WeakMap<StoredMessage, Uint8Array>();
const presenceEntries = new WeakMap<PresenceEntry, Map<string, Uint8Array>>();
const batchEntries = new WeakMap<object, Uint8Array>();
let lastHeartbeat: SessionEvent | undefined;
let lastHeartbeatEntry: Uint8Array | undefined;

/** The event as one `events` entry: tag, length, SubscribeEvent bytes. Messages and presence changes are encoded once for all streams. */
export function eventEntry(event: SessionEvent): Uint8Array {
  if (event.type === "message") {
    // With compact dependencies: one object per message's fan-out, shared by its streams (compactDependencies).
    if (event.compact) return (event.compact.encoded ??= entry(event));
    let bytes = messageEntries.get(event.message);
    if (!bytes) messageEntries.set(event.message, (bytes = entry(event)));
    return bytes;
  }
  if (event.type === "presence_changes") {
    // One batch object is shared by every live session of the room: encoded once.
    let bytes = batchEntries.get(event);
    if (!bytes) batchEntries.set(event, (bytes = entry(event)));
    return bytes;
  }
  if (event.type === "heartbeat") {
    // The broker's tick hands one heartbeat object to every idle stream (10,000 idle sessions: 10,000 at once).
    if (event !== lastHeartbeat) {
      lastHeartbeat = event;
      lastHeartbeatEntry = entry(event);
    }
    return lastHeartbeatEntry!;
  }
  if (event.type === "presence") {
    // A join or leave fans out to every session of the room, like a message:
    // the entry object is shared, so its encoding is too.
    let byKind = presenceEntries.get(event.entry);
    if (!byKind) presenceEntries.set(event.entry, (byKind = new Map()));
    const key = `${event.kind}\n${event.room}`;
    let bytes = byKind.get(key);
    if (!bytes) byKind.set(key, (bytes = entry(event)));
    return bytes;
  }
  return entry(event);
}

function entry(event: SessionEvent): Uint8Array {
  // Messages and the list-carrying events are written as entries directly (no second copy).
  if (event.type === "message") return encodeMessageEvent(event.message, event.compact, true);
  if (event.type === "subscribed") return encodeSubscribed(event, true);
  if (event.type === "presence_changes") return encodePresenceChanges(event.room, event.changes, true);
  // The rest as SubscribeEvent bytes (a presence change by hand, the session's own events by protobuf-es), then wrapped.
  const body = event.type === "presence" ? encodePresenceEvent(event.room, event.kind, event.entry) : toBinary(SubscribeEventSchema, toPbEvent(event));
  const lengthBytes = varintLength(body.length);
  const out = new Uint8Array(1 + lengthBytes + body.length);
  out[0] = EVENTS_TAG;
  let n = body.length;
  let i = 1;
  while (n > 0x7f) {
    out[i++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[i++] = n;
  out.set(body, i);
  return out;
}

const varintLength = (n: number) => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

/** gRPC length-prefixed messages carrying a single event, shared by every stream that sends it alone. */
const singleFrames = new WeakMap<Uint8Array, Buffer>();

/**
 * The last multi-event frame built, and the entries it holds. Every session
 * of a room usually has the same events queued at a flush (a burst of the
 * room's messages), and the flush visits them one after another: they share
 * one buffer instead of each copying the same bytes into its own. Copying
 * (and collecting) a frame per stream was the broker's largest cost flat out,
 * and it grew with the size of the messages.
 */
let lastEntries: Uint8Array[] = [];
let lastFrame: Buffer | undefined;

/** Frames of a lone presence batch, in pieces: the room's batch goes to every live member alike. */
const batchFrames = new WeakMap<SessionEvent, Uint8Array[]>();

/**
 * The gRPC message (5-byte prefix + SubscribeResponse) carrying `events`:
 * one buffer, so a stream gets one write per flush. A lone message or
 * presence change (the common paced case) reuses one buffer for every stream,
 * and so does a run of them that the previous stream was sent too. A flush
 * with a list in it (a present list, a batch of presence changes) goes out
 * in pieces instead: see listFrame.
 */
export function subscribeFrame(events: SessionEvent[]): Buffer | Uint8Array[] {
  if (events.length === 1 && events[0]!.type === "presence_changes") {
    const only = events[0]!;
    let pieces = batchFrames.get(only);
    if (!pieces) batchFrames.set(only, (pieces = listFrame(events)));
    return pieces;
  }
  for (const event of events) if (carriesList(event)) return listFrame(events);
  if (events.length === 1) {
    const only = eventEntry(events[0]!);
    let frame = singleFrames.get(only);
    if (!frame) {
      frame = Buffer.allocUnsafe(5 + only.length);
      frame[0] = 0;
      frame.writeUInt32BE(only.length, 1);
      frame.set(only, 5);
      const type = events[0]!.type;
      if (type === "message" || type === "presence" || type === "heartbeat") singleFrames.set(only, frame);
    }
    return frame;
  }
  // The same run as the stream before (a fan-out flushes it to every stream)
  // is found without allocating. Entries are shared only for events that fan
  // out (messages, presence, a tick's heartbeat); a session's own events
  // (subscribed, session_started) are encoded anew and never match.
  if (lastFrame !== undefined && lastEntries.length === events.length) {
    let i = 0;
    while (i < events.length && eventEntry(events[i]!) === lastEntries[i]) i++;
    if (i === events.length) return lastFrame;
  }
  const entries = new Array<Uint8Array>(events.length);
  let length = 0;
  for (let i = 0; i < events.length; i++) length += (entries[i] = eventEntry(events[i]!)).length;
  const frame = Buffer.allocUnsafe(5 + length);
  frame[0] = 0;
  frame.writeUInt32BE(length, 1);
  let offset = 5;
  for (const e of entries) {
    frame.set(e, offset);
    offset += e.length;
  }
  lastEntries = entries;
  lastFrame = frame;
  return frame;
}

/**
 * A frame with lists in it, as pieces to write one after another: each list
 * (a joiner's present list, a batch's changes) is shared bytes that
 * wire-encoders.ts never rewrites, and what lies between lists is copied
 * into one small buffer. In a mass join, each joiner's list was otherwise
 * copied twice (into its event, then into its frame), and so was each late
 * joiner's tail of the turn's presence batch: O(joins²) bytes a turn, a
 * sixth to a third of the broker's CPU (slower turns gather bigger batches)
 * while 10,000 sessions joined rooms of 100.
 */
function listFrame(events: SessionEvent[]): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  const shared: boolean[] = [];
  let length = 0;
  const add = (bytes: Uint8Array, list: boolean) => {
    pieces.push(bytes);
    shared.push(list);
    length += bytes.length;
  };
  for (const event of events) {
    const split = listPieces(event);
    if (split) {
      add(split[0], false);
      add(split[1], true);
    } else add(eventEntry(event), false);
  }
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= pieces.length; i++) {
    if (i < pieces.length && !shared[i]) continue;
    // Copy the pieces since the last list (the 5-byte prefix before the first).
    const prefix = chunks.length === 0 ? 5 : 0;
    let size = prefix;
    for (let j = start; j < i; j++) size += pieces[j]!.length;
    if (size > 0) {
      const chunk = Buffer.allocUnsafe(size);
      if (prefix) {
        chunk[0] = 0;
        chunk.writeUInt32BE(length, 1);
      }
      let at = prefix;
      for (let j = start; j < i; j++) {
        chunk.set(pieces[j]!, at);
        at += pieces[j]!.length;
      }
      chunks.push(chunk);
    }
    if (i < pieces.length) chunks.push(pieces[i]!);
    start = i + 1;
  }
  return chunks;
}

const carriesList = (event: SessionEvent) => (event.type === "subscribed" && event.present?.length) || event.type === "presence_changes";

/** An event that carries a list, as its head and the list's shared bytes: a joiner's present list, a batch of presence changes. */
function listPieces(event: SessionEvent): [Uint8Array, Uint8Array] | undefined {
  if (event.type === "subscribed" && event.present?.length) return subscribedEntryPieces(event);
  if (event.type === "presence_changes") return presenceChangesEntryPieces(event.room, event.changes);
  return undefined;
}

/** A SubscribeResponse for binary codecs on connect-node, assembled from pre-encoded events. */
export function toPbResponseEncoded(batch: SessionEvent[]): SubscribeResponse {
  const response = create(SubscribeResponseSchema);
  // protobuf-es writes the tag of an unknown field itself: hand it length + bytes.
  response.$unknown = batch.map((event) => ({ no: EVENTS_FIELD, wireType: WireType.LengthDelimited, data: eventEntry(event).subarray(1) }));
  return response;
}
