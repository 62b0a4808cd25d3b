import type { Position } from "../engine/engine.js";
import { BrokerError, invalidArgument } from "./errors.js";
import type { FilterCompiler, MessageFilter } from "./filter.js";
import { checkRead } from "./identity.js";
import { isPattern, patternError } from "../names/patterns.js";
import type { Session } from "./session.js";
import { validateRoom } from "./validate.js";

export interface RoomRequest {
  /** A room name or a pattern (`sports.*`, `sports.>`). */
  room: string;
  /** Resume point: the last position the client processed (rooms only). */
  since?: Position;
  /** CEL expression; only matching messages are delivered. */
  filter?: string;
}

/** A room request that passed validation, with its filter compiled. */
export type PlannedRoom = RoomRequest & { compiled?: MessageFilter };

/**
 * Validates a Subscribe/Join request before anything changes, so a bad one
 * is rejected (synchronously) as a whole: room names and patterns, read
 * permission, positions, the per-session room limit, then filters (the
 * costly part, so a request over the cheap limits compiles nothing).
 * Returns what the session does not hold yet.
 */
export function planJoin(
  session: Session,
  requests: RoomRequest[],
  maxRooms: number,
  filters: FilterCompiler,
): { rooms: PlannedRoom[]; patterns: Map<string, MessageFilter | undefined> } {
  const rooms = new Map<string, PlannedRoom & { index: number }>();
  const patterns = new Map<string, number>();
  requests.forEach((request, i) => {
    if (isPattern(request.room)) {
      const problem = patternError(request.room);
      if (problem) throw invalidArgument(`rooms[${i}].room: "${request.room.slice(0, 128)}" ${problem}`, "INVALID_ROOM", { field: `rooms[${i}].room` });
      if (request.since)
        throw invalidArgument(`rooms[${i}].since: a pattern takes no position; resume its rooms by name`, "INVALID_POSITION", { field: `rooms[${i}].since` });
      if (!session.patterns.has(request.room)) patterns.set(request.room, i);
      return;
    }
    validateRoom(request.room, `rooms[${i}].room`);
    checkRead(session.identity, request.room);
    if (request.since && request.since.epoch === "" && request.since.sequence !== 0n)
      throw invalidArgument(`rooms[${i}].since: a sequence needs the epoch it belongs to`, "INVALID_POSITION", { field: `rooms[${i}].since` });
    if (!session.rooms.has(request.room)) rooms.set(request.room, { ...request, index: i });
  });
  if (session.rooms.size + session.patterns.size + rooms.size + patterns.size > maxRooms)
    throw new BrokerError(
      "resource_exhausted",
      `a session may hold at most ${maxRooms} rooms (holds ${session.rooms.size}, asked for ${rooms.size} more); leave rooms first`,
      { reason: "ROOM_LIMIT", metadata: { limit: String(maxRooms) } },
    );
  filters.checkRequest(
    requests.flatMap((r) => (r.filter ? [r.filter] : [])),
    "rooms",
  );
  // Every filter is checked, also one of a room held already (compiled once per text).
  const compiled = requests.map((r, i) => (r.filter ? filters.compile(r.filter, `rooms[${i}].filter`) : undefined));
  return {
    rooms: [...rooms.values()].map(({ index, ...room }) => ({ ...room, compiled: compiled[index] })),
    patterns: new Map([...patterns].map(([pattern, i]) => [pattern, compiled[i]])),
  };
}

/** Validates a Leave request's rooms and patterns (INVALID_ARGUMENT) before any is left. */
export function checkLeave(rooms: string[]): void {
  rooms.forEach((room, i) => {
    if (isPattern(room)) {
      const problem = patternError(room);
      if (problem) throw invalidArgument(`rooms[${i}]: "${room.slice(0, 128)}" ${problem}`, "INVALID_ROOM", { field: `rooms[${i}]` });
    } else validateRoom(room, `rooms[${i}]`);
  });
}
