/**
 * Room and user names, shared by every layer (broker, engines, SDK, CLI).
 * The checks return what is wrong (for an INVALID_ARGUMENT message) or null;
 * each layer turns that into its own error type.
 */

export const MAX_ROOM_LENGTH = 128;
const ROOM_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const USER_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** `@alice` is Alice's private inbox room. */
export const isInbox = (room: string): boolean => room.startsWith("@");
export const inboxOwner = (room: string): string => room.slice(1);
export const inboxOf = (user: string): string => `@${user}`;

/** A room name (`general`, `sports.football`) or an inbox (`@alice`): null when valid, else what is wrong. */
export function roomNameError(room: string): string | null {
  if (room.length === 0) return "must not be empty";
  if (room.length > MAX_ROOM_LENGTH) return `${room.length} characters, at most ${MAX_ROOM_LENGTH} allowed`;
  if (isInbox(room)) {
    if (!USER_RE.test(inboxOwner(room)))
      return `"${printable(room)}" is not an inbox; use '@' and a user name (e.g. "@alice")`;
    return null;
  }
  if (!ROOM_RE.test(room))
    return `"${printable(room)}" is not a room name; use letters, digits, '_' and '-' in dot-separated segments (e.g. "sports.football")`;
  return null;
}

/** A user name: 1-64 letters, digits, '_', '.' or '-'. */
export const isUserName = (user: string): boolean => USER_RE.test(user);

export function userNameError(user: string): string | null {
  return isUserName(user) ? null : `"${printable(user)}" is not a user name; use 1-64 letters, digits, '_', '.' or '-'`;
}

/** Shortens and escapes a hostile value before it is echoed in an error message. */
export function printable(value: string): string {
  const cut = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return JSON.stringify(cut).slice(1, -1);
}
