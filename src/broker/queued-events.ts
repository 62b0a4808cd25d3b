import type { Dependency, StoredMessage } from "../engine/engine.js";
import type { CompactDependencies } from "./compact-dependencies.js";
import type { SessionEvent } from "./session.js";

// What a session queues, as the fan-out makes it: one shared event per
// delivered message, and every event's estimated size for the queue bounds.
// Each keeps the last answer, since a fan-out asks the same for every session.

/**
 * Estimated wire size of an event, for the per-session byte bound. A
 * message's dependencies count as they go on this stream: whole (room,
 * epoch, sequence and their tags each), or in the compact form (one byte per
 * position named by index, the rest whole; the very same list as one flag),
 * which is all a stream asking for it holds of them. Computed once per
 * fan-out: the sessions share the event.
 */
export function eventBytes(event: SessionEvent): number {
  if (event.type === "presence_changes") return 64 + 96 * event.changes.length;
  if (event.type !== "message") return 128;
  // A fan-out asks for the same event once per session: the last answer first.
  if (event === lastSized) return lastSize;
  const compact = event.compact;
  const bytes = withoutDependencies(event.message) + (compact ? 2 + compact.refs.length + positionsBytes(compact.explicit) : positionsBytes(event.message.dependencies));
  lastSized = event;
  lastSize = bytes;
  return bytes;
}

/** A message's estimated size without its dependencies (WeakMap: asked again for its replays). */
function withoutDependencies(m: StoredMessage): number {
  let bytes = messageBytes.get(m);
  if (bytes === undefined) {
    bytes = 96 + m.room.length + m.sender.length + m.content.length * 3 + m.payload.length + m.clientMessageId.length;
    for (const key in m.attributes) bytes += key.length + m.attributes[key]!.length * 3 + 4;
    messageBytes.set(m, bytes);
  }
  return bytes;
}

/** Positions sent whole: room, epoch, sequence and their tags each. */
function positionsBytes(dependencies: readonly Dependency[] | undefined): number {
  let bytes = 0;
  // Indexed: the lists are frozen, and for-of over a frozen array allocates an iterator result per entry.
  if (dependencies) for (let i = 0; i < dependencies.length; i++) bytes += dependencies[i]!.room.length + dependencies[i]!.epoch.length + 16;
  return bytes;
}

const messageBytes = new WeakMap<StoredMessage, number>();
let lastSized: SessionEvent | undefined;
let lastSize = 0;

type MessageEvent = SessionEvent & { type: "message" };

/**
 * The event queued for a delivered message. Events are never changed once
 * made, so the sessions of a fan-out share one (the last one made, when its
 * message and compact form are the same) instead of each allocating its own.
 */
export function messageEvent(message: StoredMessage, compact: CompactDependencies | undefined): MessageEvent {
  if (lastEvent !== undefined && lastEvent.message === message && lastEvent.compact === compact) return lastEvent;
  return (lastEvent = { type: "message", message, compact });
}

let lastEvent: MessageEvent | undefined;
