import { invalidArgument } from "./errors.js";
import { roomNameError, userNameError } from "../names/rooms.js";
import type { Dependency } from "../engine/engine.js";

/**
 * Input validation. Every check throws a BrokerError whose message names the
 * field and says what a valid value looks like.
 */

export { isInbox, inboxOwner, MAX_ROOM_LENGTH } from "../names/rooms.js";

/** A room name (`general`, `sports.football`) or an inbox (`@alice`). */
export function validateRoom(room: string, field = "room"): string {
  const problem = roomNameError(room);
  if (problem) throw invalidArgument(`${field}: ${problem}`, "INVALID_ROOM", { field });
  return room;
}

/** A user name: 1-64 letters, digits, '_', '.' or '-'. */
export function validateUser(user: string | null | undefined): string {
  const problem = userNameError(user ?? "");
  if (problem) throw invalidArgument(`user: ${problem}`);
  return user!;
}

const SUBSCRIBER_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** A durable subscriber's name ("" = not durable): 1-64 letters, digits, '_' or '-'. */
export function validateSubscriber(subscriber: string): void {
  if (subscriber !== "" && !SUBSCRIBER_RE.test(subscriber))
    throw invalidArgument(`subscriber: "${subscriber.slice(0, 64)}" is not a subscriber name; use 1-64 letters, digits, '_' or '-'`, "INVALID_REQUEST", {
      field: "subscriber",
    });
}

export function validateShortText(value: string, field: string, maxBytes: number): string {
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > maxBytes) throw invalidArgument(`${field}: ${bytes} bytes, at most ${maxBytes} allowed`, "INVALID_REQUEST", { field });
  return value;
}

export interface MessageBody {
  content: string;
  payload: Uint8Array;
  attributes: Record<string, string>;
}

export function validateMessageBody(body: MessageBody, maxBytes: number): void {
  if (body.content.length === 0 && body.payload.length === 0)
    throw invalidArgument("content: must not be empty (or set payload)", "INVALID_MESSAGE");
  let size = Buffer.byteLength(body.content, "utf8") + body.payload.length;
  for (const [key, value] of Object.entries(body.attributes)) {
    if (key.length === 0) throw invalidArgument("attributes: keys must not be empty", "INVALID_MESSAGE");
    size += Buffer.byteLength(key, "utf8") + Buffer.byteLength(value, "utf8");
  }
  if (size > maxBytes)
    throw invalidArgument(`message is ${size} bytes (content + payload + attributes), at most ${maxBytes} allowed`, "MESSAGE_TOO_LARGE", {
      limit_bytes: String(maxBytes),
      size_bytes: String(size),
    });
}

/** At most this many causal dependencies per message (PublishRequest.dependencies). */
export const MAX_DEPENDENCIES = 16;
const MAX_EPOCH_BYTES = 64;

/**
 * A publish's causal dependencies: well-formed and bounded, nothing more.
 * The broker does not check that they exist (they may be trimmed, in a room
 * the publisher cannot read, or on another node's not yet visible write) and
 * never waits for them; subscribers' SDKs do the ordering. Returns a list
 * nobody else changes, undefined for none: the wire decoder's frozen list of
 * frozen positions as it is (checked once, then known by identity: the
 * stores and compactDependencies know it that way too), else a new list of
 * plain objects (the decoder's frozen positions as they are).
 */
export function validateDependencies(dependencies: readonly Dependency[] | undefined): readonly Dependency[] | undefined {
  if (!dependencies || dependencies.length === 0) return undefined;
  if (dependencies.length > MAX_DEPENDENCIES)
    throw invalidArgument(`dependencies: ${dependencies.length} given, at most ${MAX_DEPENDENCIES} allowed`, "INVALID_REQUEST", {
      field: "dependencies",
    });
  if (validLists.has(dependencies)) return dependencies;
  const checked = dependencies.map((d, i) => {
    if (validPositions.has(d)) return d;
    const field = `dependencies[${i}]`;
    const problem = roomNameError(d.room);
    if (problem) throw invalidArgument(`${field}.room: ${problem}`, "INVALID_REQUEST", { field: `${field}.room` });
    const epochBytes = Buffer.byteLength(d.epoch, "utf8");
    if (epochBytes === 0 || epochBytes > MAX_EPOCH_BYTES)
      throw invalidArgument(`${field}.epoch: must be 1-${MAX_EPOCH_BYTES} bytes (the epoch of the message depended on)`, "INVALID_REQUEST", {
        field: `${field}.epoch`,
      });
    if (d.sequence < 1n)
      throw invalidArgument(`${field}.sequence: must be at least 1`, "INVALID_REQUEST", { field: `${field}.sequence` });
    if (Object.isFrozen(d)) {
      validPositions.add(d);
      return d;
    }
    return { room: d.room, epoch: d.epoch, sequence: d.sequence };
  });
  // A frozen list whose positions all came back as they were: itself, known from now on.
  if (Object.isFrozen(dependencies) && checked.every((d, i) => d === dependencies[i])) {
    validLists.add(dependencies);
    return dependencies;
  }
  return checked;
}

/** Frozen positions already found well-formed (see wire-decoders.ts). */
const validPositions = new WeakSet<Dependency>();
/** Frozen lists of such positions (the wire decoder hands the same list while a publisher's context does not move). */
const validLists = new WeakSet<readonly Dependency[]>();
