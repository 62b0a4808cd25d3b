import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Position, PresenceEntry, StoredMessage } from "../engine/engine.js";
import type { SessionEvent } from "../broker/session.js";
import {
  PresenceEventKind,
  SubscribeEventSchema,
  SubscribeResponseSchema,
  type SubscribeEvent,
  type SubscribeResponse,
} from "../../gen/es/seqcast/v1/pubsub_pb.js";
import {
  MessageSchema,
  PresenceEntrySchema,
  PresenceState,
  StreamPositionSchema,
  type Message,
  type PresenceEntry as PbPresenceEntry,
  type StreamPosition,
} from "../../gen/es/seqcast/v1/types_pb.js";

/** Domain values to their wire messages. */

export const toPbPosition = (position: Position): StreamPosition =>
  create(StreamPositionSchema, { epoch: position.epoch, sequence: position.sequence });

export const fromPbPosition = (position: StreamPosition | undefined): Position | undefined =>
  position ? { epoch: position.epoch, sequence: position.sequence } : undefined;

// One wire message per stored message, shared by every subscriber's stream:
// fan-out to N subscribers builds it once, not N times.
const messageCache = new WeakMap<StoredMessage, Message>();

export function toPbMessage(message: StoredMessage): Message {
  let pb = messageCache.get(message);
  if (!pb) {
    pb = create(MessageSchema, {
      id: message.id,
      room: message.room,
      epoch: message.epoch,
      sequence: message.sequence,
      sender: message.sender,
      content: message.content,
      payload: message.payload,
      attributes: message.attributes,
      time: timestampFromMs(message.timeMs),
      clientMessageId: message.clientMessageId,
    });
    messageCache.set(message, pb);
  }
  return pb;
}

const STATES = { online: PresenceState.ONLINE, away: PresenceState.AWAY } as const;

export function toPbPresenceEntry(entry: PresenceEntry, offline = false): PbPresenceEntry {
  return create(PresenceEntrySchema, {
    user: entry.user,
    sessionId: entry.sessionId,
    device: entry.device,
    state: offline ? PresenceState.OFFLINE : STATES[entry.state],
    joinedAt: timestampFromMs(entry.joinedAtMs),
    since: timestampFromMs(entry.sinceMs),
    lastActive: timestampFromMs(entry.lastActiveMs),
  });
}

const KINDS = {
  join: PresenceEventKind.JOIN,
  leave: PresenceEventKind.LEAVE,
  update: PresenceEventKind.UPDATE,
} as const;

export function toPbEvent(event: SessionEvent): SubscribeEvent {
  switch (event.type) {
    case "message":
      return create(SubscribeEventSchema, { event: { case: "message", value: toPbMessage(event.message) } });
    case "presence":
      return create(SubscribeEventSchema, {
        event: {
          case: "presence",
          value: {
            room: event.room,
            kind: KINDS[event.kind],
            entry: toPbPresenceEntry(event.entry, event.kind === "leave"),
          },
        },
      });
    case "subscribed":
      return create(SubscribeEventSchema, {
        event: {
          case: "subscribed",
          value: {
            room: event.room,
            position: toPbPosition(event.position),
            recovered: event.recovered,
            resumedFrom: event.resumedFrom && toPbPosition(event.resumedFrom),
            pattern: event.pattern ?? "",
            present: (event.present ?? []).map((entry) => toPbPresenceEntry(entry)),
          },
        },
      });
    case "session_started":
      return create(SubscribeEventSchema, {
        event: {
          case: "sessionStarted",
          value: { sessionId: event.sessionId, user: event.user, heartbeatIntervalMs: event.heartbeatIntervalMs },
        },
      });
    case "heartbeat":
      return create(SubscribeEventSchema, { event: { case: "heartbeat", value: { time: timestampFromMs(event.timeMs) } } });
    case "unsubscribed":
      return create(SubscribeEventSchema, { event: { case: "unsubscribed", value: { room: event.room } } });
    case "watermark":
      return create(SubscribeEventSchema, {
        event: {
          case: "watermark",
          value: {
            room: event.room,
            epoch: event.position.epoch,
            sequence: event.position.sequence,
            afterSequence: event.after,
          },
        },
      });
    case "reset":
      return create(SubscribeEventSchema, {
        event: { case: "reset", value: { room: event.room, position: toPbPosition(event.position) } },
      });
  }
}

// ---- encode once --------------------------------------------------------
//
// A published message fans out to every subscriber's stream. Serializing the
// same SubscribeEvent for each of them is the dominant cost of fan-out, so
// for binary codecs the event is encoded once per message and every stream's
// SubscribeResponse carries those bytes verbatim as its repeated field 1
// (protobuf-es writes `$unknown` fields as they are; on the wire this is
// exactly `repeated SubscribeEvent events = 1`). JSON codecs take the normal
// path: they would not write unknown fields.

/** `events` is field 1 of SubscribeResponse; see pubsub.proto. */
const EVENTS_FIELD = 1;
const encodedEvents = new WeakMap<StoredMessage, Uint8Array>();

/** The event as the wire value of one `events` entry: length prefix + SubscribeEvent bytes. */
function encodeEvent(event: SessionEvent): Uint8Array {
  if (event.type === "message") {
    let bytes = encodedEvents.get(event.message);
    if (!bytes) {
      bytes = lengthPrefixed(toBinary(SubscribeEventSchema, toPbEvent(event)));
      encodedEvents.set(event.message, bytes);
    }
    return bytes;
  }
  if (event.type === "presence") {
    // A join or leave fans out to every session of the room, like a message:
    // the entry object is shared, so its encoding is too.
    let byKind = encodedPresence.get(event.entry);
    if (!byKind) encodedPresence.set(event.entry, (byKind = new Map()));
    const key = `${event.kind}\n${event.room}`;
    let bytes = byKind.get(key);
    if (!bytes) byKind.set(key, (bytes = lengthPrefixed(toBinary(SubscribeEventSchema, toPbEvent(event)))));
    return bytes;
  }
  return lengthPrefixed(toBinary(SubscribeEventSchema, toPbEvent(event)));
}

const encodedPresence = new WeakMap<PresenceEntry, Map<string, Uint8Array>>();

function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  return new BinaryWriter().bytes(bytes).finish();
}

/** A SubscribeResponse for binary codecs, assembled from pre-encoded events. */
export function toPbResponseEncoded(batch: SessionEvent[]): SubscribeResponse {
  const response = create(SubscribeResponseSchema);
  response.$unknown = batch.map((event) => ({ no: EVENTS_FIELD, wireType: WireType.LengthDelimited, data: encodeEvent(event) }));
  return response;
}

/** A SubscribeResponse built field by field (JSON codecs). */
export function toPbResponse(batch: SessionEvent[]): SubscribeResponse {
  return create(SubscribeResponseSchema, { events: batch.map(toPbEvent) });
}
