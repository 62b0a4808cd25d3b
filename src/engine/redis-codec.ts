import type { MessageDraft, PresenceEntry, StoredMessage } from "./engine.js";
import { decodeDependencies, encodeDependencies } from "./dependency-codec.js";

/**
 * How the Redis engine writes messages and events as strings: a message
 * body (stored in the room's stream and carried by its pub/sub event) and
 * the pub/sub event frames the scripts in redis-scripts.ts publish.
 *
 * The body is everything of a message except what Redis assigns inside the
 * publish script (epoch and sequence) and what the key names (the room).
 */
interface Body {
  i: string; // id
  s: string; // sender
  c: string; // content
  p?: string; // payload, base64 (absent when empty)
  a: Record<string, string>; // attributes
  t: number; // time, ms
  k: string; // client message id
  d?: string; // causal dependencies (dependency-codec.ts; absent when none)
}

export function encodeBody(id: string, draft: MessageDraft): string {
  const body: Body = { i: id, s: draft.sender, c: draft.content, a: draft.attributes, t: draft.timeMs, k: draft.clientMessageId };
  if (draft.payload.byteLength > 0)
    body.p = Buffer.from(draft.payload.buffer, draft.payload.byteOffset, draft.payload.byteLength).toString("base64");
  const dependencies = encodeDependencies(draft.dependencies);
  if (dependencies !== undefined) body.d = dependencies;
  return JSON.stringify(body);
}

export function decodeBody(room: string, epoch: string, sequence: bigint, text: string): StoredMessage {
  const body = JSON.parse(text) as Body;
  const bytes = body.p ? Buffer.from(body.p, "base64") : undefined;
  return {
    id: body.i,
    room,
    epoch,
    sequence,
    sender: body.s,
    content: body.c,
    // A plain Uint8Array view, like the drafts the broker stores, not a Buffer.
    payload: bytes ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(0),
    attributes: body.a,
    timeMs: body.t,
    clientMessageId: body.k,
    dependencies: decodeDependencies(body.d),
  };
}

/** The sequence of a stream entry id `<sequence>-0`. */
export const sequenceOfEntry = (id: string): bigint => BigInt(id.slice(0, id.indexOf("-")));

/** An event as it arrives on a room's channel. */
export type ChannelEvent =
  | { type: "message"; message: StoredMessage }
  | { type: "reset"; epoch: string }
  | { type: "presence"; kind: "join" | "leave" | "update"; entry: PresenceEntry };

/**
 * Frames: "m|<epoch>|<sequence>|<body>", "r|<epoch>", "p|<kind>|<entry JSON>".
 * Undefined for anything else (a newer node's frame: ignored, not fatal).
 */
export function decodeEvent(room: string, frame: string): ChannelEvent | undefined {
  switch (frame[0]) {
    case "m": {
      const a = frame.indexOf("|", 2);
      const b = frame.indexOf("|", a + 1);
      if (a < 0 || b < 0) return undefined;
      const epoch = frame.slice(2, a);
      return { type: "message", message: decodeBody(room, epoch, BigInt(frame.slice(a + 1, b)), frame.slice(b + 1)) };
    }
    case "r":
      return { type: "reset", epoch: frame.slice(2) };
    case "p": {
      const a = frame.indexOf("|", 2);
      const kind = frame.slice(2, a);
      if (kind !== "join" && kind !== "leave" && kind !== "update") return undefined;
      return { type: "presence", kind, entry: JSON.parse(frame.slice(a + 1)) as PresenceEntry };
    }
    default:
      return undefined;
  }
}
