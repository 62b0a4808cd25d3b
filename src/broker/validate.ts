import { invalidArgument } from "./errors.js";

/**
 * Input validation. Every check throws a BrokerError whose message names the
 * field and says what a valid value looks like.
 */

export const MAX_ROOM_LENGTH = 128;
const ROOM_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const USER_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** `@alice` is Alice's private inbox room. */
export const isInbox = (room: string): boolean => room.startsWith("@");
export const inboxOwner = (room: string): string => room.slice(1);

/** A room name (`general`, `sports.football`) or an inbox (`@alice`). */
export function validateRoom(room: string, field = "room"): string {
  if (room.length === 0) throw invalidArgument(`${field}: must not be empty`);
  if (room.length > MAX_ROOM_LENGTH)
    throw invalidArgument(`${field}: ${room.length} characters, at most ${MAX_ROOM_LENGTH} allowed`);
  if (isInbox(room)) {
    if (!USER_RE.test(inboxOwner(room)))
      throw invalidArgument(`${field}: "${printable(room)}" is not an inbox; use '@' and a user name (e.g. "@alice")`);
    return room;
  }
  if (!ROOM_RE.test(room))
    throw invalidArgument(
      `${field}: "${printable(room)}" is not a room name; use letters, digits, '_' and '-' in dot-separated segments (e.g. "sports.football")`,
    );
  return room;
}

/** A user name: 1-64 letters, digits, '_', '.' or '-'. */
export function validateUser(user: string | null | undefined): string {
  if (!user || !USER_RE.test(user))
    throw invalidArgument(`user: "${printable(user ?? "")}" is not a user name; use 1-64 letters, digits, '_', '.' or '-'`);
  return user;
}

export function validateShortText(value: string, field: string, maxBytes: number): string {
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > maxBytes) throw invalidArgument(`${field}: ${bytes} bytes, at most ${maxBytes} allowed`);
  return value;
}

export interface MessageBody {
  content: string;
  payload: Uint8Array;
  attributes: Record<string, string>;
}

export function validateMessageBody(body: MessageBody, maxBytes: number): void {
  if (body.content.length === 0 && body.payload.length === 0)
    throw invalidArgument("content: must not be empty (or set payload)");
  let size = Buffer.byteLength(body.content, "utf8") + body.payload.length;
  for (const [key, value] of Object.entries(body.attributes)) {
    if (key.length === 0) throw invalidArgument("attributes: keys must not be empty");
    size += Buffer.byteLength(key, "utf8") + Buffer.byteLength(value, "utf8");
  }
  if (size > maxBytes)
    throw invalidArgument(`message is ${size} bytes (content + payload + attributes), at most ${maxBytes} allowed`);
}

/** Shortens and escapes a hostile value before it is echoed in an error message. */
function printable(value: string): string {
  const cut = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return JSON.stringify(cut).slice(1, -1);
}
