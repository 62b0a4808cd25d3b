import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Position, PresenceEntry, PublishResult, StoredMessage } from "../engine/engine.js";
import { BrokerError } from "../broker/errors.js";
import type { SessionEvent } from "../broker/session.js";
import type { CompactDependencies } from "../broker/compact-dependencies.js";
import {
  PresenceEventKind,
  PublishResponseSchema,
  PublishResultSchema,
  type PublishResponse,
  type PublishResult as PbPublishResult,
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
/** With compact dependencies, per fan-out's compact form (its streams share it, see compactDependencies). */
const compactCache = new WeakMap<CompactDependencies, Message>();

/** The wire message; with `compact`, its dependencies as refs (SubscribeRequest.compact_dependencies). */
export function toPbMessage(message: StoredMessage, compact?: CompactDependencies): Message {
  let pb = compact ? compactCache.get(compact) : messageCache.get(message);
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
      dependencies: compact ? compact.explicit : message.dependencies?.slice(),
      dependencyRefs: compact?.refs,
      sameDependencies: compact?.same,
    });
    if (compact) compactCache.set(compact, pb);
    else messageCache.set(message, pb);
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
      return create(SubscribeEventSchema, { event: { case: "message", value: toPbMessage(event.message, event.compact) } });
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
    case "presence_changes":
      return create(SubscribeEventSchema, {
        event: {
          case: "presenceChanges",
          value: {
            room: event.room,
            changes: event.changes.map((c) => ({ room: event.room, kind: KINDS[c.kind], entry: toPbPresenceEntry(c.entry, c.kind === "leave") })),
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

/** A SubscribeResponse built field by field (JSON codecs). */
export function toPbResponse(batch: SessionEvent[]): SubscribeResponse {
  return create(SubscribeResponseSchema, { events: batch.map(toPbEvent) });
}

// ---- publish results ----------------------------------------------------

/** The wire result of one message of a PublishStream or PublishBatch. */
export function toPbPublishResult(clientMessageId: string, outcome: PublishResult | BrokerError): PbPublishResult {
  if (outcome instanceof BrokerError)
    return create(PublishResultSchema, {
      clientMessageId,
      result: {
        case: "error",
        value: {
          code: BROKER_CODE_NUMBERS[outcome.code],
          message: outcome.message,
          reason: outcome.reason,
          metadata: outcome.metadata,
          retryAfterMs: outcome.retryAfterMs ?? 0,
        },
      },
    });
  return create(PublishResultSchema, { clientMessageId, result: { case: "published", value: toPbPublishResponse(outcome) } });
}

export function toPbPublishResponse({ message, duplicate }: PublishResult): PublishResponse {
  return create(PublishResponseSchema, {
    id: message.id,
    position: toPbPosition(message),
    time: timestampFromMs(message.timeMs),
    duplicate,
  });
}

/** google.rpc.Code numbers of the domain's codes. */
const BROKER_CODE_NUMBERS: Record<BrokerError["code"], number> = {
  invalid_argument: 3,
  unauthenticated: 16,
  permission_denied: 7,
  not_found: 5,
  resource_exhausted: 8,
  out_of_range: 11,
  failed_precondition: 9,
  unavailable: 14,
  internal: 13,
};
