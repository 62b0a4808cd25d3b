import type { StoredMessage } from "../engine/engine.js";
import type { CompactDependencies } from "./compact-dependencies.js";
import type { SessionEvent } from "./session.js";

// What a session queues, as the fan-out makes it: one shared event per
// delivered message, and every event's estimated size for the queue bounds.
// Each keeps the last answer, since a fan-out asks the same for every session.

/** Estimated wire size of an event, for the per-session byte bound (messages: computed once, shared by every session). */
export function eventBytes(event: SessionEvent): number {
  if (event.type === "presence_changes") return 64 + 96 * event.changes.length;
  if (event.type !== "message") return 128;
  // A fan-out asks for the same message once per session: the last answer first, the WeakMap after.
  if (event.message === lastSized) return lastSize;
  let bytes = messageBytes.get(event.message);
  if (bytes === undefined) {
    const m = event.message;
    bytes = 96 + m.room.length + m.sender.length + m.content.length * 3 + m.payload.length + m.clientMessageId.length;
    for (const key in m.attributes) bytes += key.length + m.attributes[key]!.length * 3 + 4;
    // Causal dependencies: room, epoch, sequence and their tags each.
    if (m.dependencies) for (const d of m.dependencies) bytes += d.room.length + d.epoch.length + 16;
    messageBytes.set(m, bytes);
  }
  lastSized = event.message;
  lastSize = bytes;
  return bytes;
}

const messageBytes = new WeakMap<StoredMessage, number>();
let lastSized: StoredMessage | undefined;
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
