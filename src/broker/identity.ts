import { BrokerError } from "./errors.js";
import { anyMatches } from "../names/patterns.js";
import { isInbox, inboxOwner } from "./validate.js";

/**
 * Who is calling, as proven by the transport (a verified token). The broker
 * never takes an identity from a request field.
 */
export interface Identity {
  user: string;
  admin: boolean;
  /** Room patterns the user may publish to; undefined = any room. */
  publish?: string[];
  /** Room patterns the user may subscribe to and read; undefined = any room. */
  subscribe?: string[];
}

/**
 * Publishing: anyone authenticated may write to an inbox (`@bob`); other
 * rooms need a matching publish pattern when the token restricts them.
 */
export function checkPublish(identity: Identity, room: string): void {
  if (isInbox(room)) return;
  if (identity.publish && !anyMatches(identity.publish, room))
    throw new BrokerError("permission_denied", `your token does not allow publishing to "${room}"`, { reason: "ROOM_FORBIDDEN" });
}

/**
 * Reading (Subscribe, Join, GetHistory, GetPresence): an inbox only by its
 * owner; other rooms need a matching subscribe pattern when restricted.
 */
export function checkRead(identity: Identity, room: string): void {
  if (isInbox(room)) {
    if (inboxOwner(room) !== identity.user)
      throw new BrokerError("permission_denied", `"${room}" is another user's inbox; only its owner may read it`, {
        reason: "INBOX_FORBIDDEN",
      });
    return;
  }
  if (identity.subscribe && !anyMatches(identity.subscribe, room))
    throw new BrokerError("permission_denied", `your token does not allow reading "${room}"`, { reason: "ROOM_FORBIDDEN" });
}

/** checkRead as a predicate. */
export function mayRead(identity: Identity, room: string): boolean {
  try {
    checkRead(identity, room);
    return true;
  } catch {
    return false;
  }
}
