import type { Engine, Position, RoomEvent, StoredMessage } from "../engine/engine.js";
import { BrokerError, invalidArgument } from "./errors.js";
import type { MessageFilter } from "./filter.js";
import { firstReplayPage, nextReplayPage, type ReadHistory } from "./history.js";
import type { PlannedRoom } from "./join-plan.js";
import { changesAfterSnapshot } from "./presence-snapshot.js";
import type { RoomIndex } from "./room-index.js";
import type { Session } from "./session.js";
import { TimeSlice } from "./time-slice.js";
import { isInbox, validateRoom } from "./validate.js";
import { isPattern } from "../names/patterns.js";

// A session's rooms and patterns: joining (with replay), leaving, its
// presence in them and its acknowledgements. The broker (broker.ts) checks
// the requests as a whole first (join-plan.ts, quotas).

/** What a session's memberships use of the broker (broker.ts). */
export interface MembershipContext {
  readonly index: RoomIndex;
  readonly readHistory: ReadHistory;
  now(): number;
  /** Calls the engine, mapping its failures to broker errors (Broker.callEngine). */
  callEngine<T>(call: (engine: Engine) => Promise<T>): Promise<T>;
  /** Too many members on this node for presence events (presenceEventsMax): the join lists nobody. */
  presenceOff(room: string): boolean;
  /** The first batched presence change a member going live now receives (PresenceBatches.next). */
  presenceFrom(): number;
}

/**
 * Joins one room for a session: attaches it to the room's fan-out, then
 * answers `subscribed` with the room's position and who is here, replays
 * from a resume position page by page at the stream's pace (live events
 * park in the membership meanwhile), goes live with what was parked, and
 * announces the session's presence. A failure before it went live leaves
 * the session without the room.
 */
export async function joinRoom(broker: MembershipContext, session: Session, request: PlannedRoom): Promise<void> {
  const { room } = request;
  if (session.rooms.has(room)) return;
  const membership = {
    room,
    joining: true,
    pending: [] as RoomEvent[],
    lastSequence: 0n,
    epoch: "",
    unacked: [] as Array<{ message: StoredMessage; sentAtMs: number }>,
    filter: request.compiled,
    filteredThrough: 0n,
    lastSent: 0n,
    presenceFrom: undefined as number | undefined,
  };
  session.rooms.set(room, membership);
  const watching = broker.index.attach(session, room);
  const stillJoined = () => session.rooms.get(room) === membership && !session.isEnded;
  try {
    await watching;
    // Who is here, as of the point where this room's live events start (see changesAfterSnapshot).
    const listedFrom = membership.pending.length;
    const present = isInbox(room) || broker.presenceOff(room) ? [] : await broker.callEngine((engine) => engine.presenceList(room));
    const listedTo = membership.pending.length;
    const position = await broker.callEngine((engine) => engine.position(room));
    // A durable subscriber that names no position resumes after its last ack.
    const since =
      request.since ??
      (session.durableKey !== undefined
        ? await broker.callEngine((engine) => engine.ackGet(session.durableKey!, room))
        : undefined);
    let page = since ? await firstReplayPage(broker.readHistory, room, since, position) : undefined;
    if (!stillJoined()) return;
    membership.epoch = position.epoch;
    membership.lastSent = page && since ? since.sequence : position.sequence;
    session.queue.push({ type: "subscribed", room, position, recovered: page !== undefined, resumedFrom: page && since, present }, broker.now());
    // The replay flows at the stream's pace, page by page: a resume of more
    // messages than a session may queue must not make it a slow consumer.
    // Live events wait in `pending` meanwhile (bounded like the queue).
    // A filtered replay gives the event loop back between slices of evaluations.
    const slice = new TimeSlice();
    while (page && page.length > 0) {
      for (const message of page) {
        if (session.queue.crowded) await session.queue.roomToQueue();
        if (membership.filter && slice.due()) await slice.yield();
        if (!stillJoined()) return;
        session.sendMessage(membership, message, broker.now());
      }
      // A page that can no longer follow (trimmed meanwhile) ends the
      // replay early: the client sees the hole and reports the loss.
      page = await nextReplayPage(broker.readHistory, room, page.at(-1)!.sequence, position);
      if (!stillJoined()) return;
    }
    const now = broker.now();
    // Go live: everything parked while joining follows, minus what the replay already covered.
    membership.lastSequence = position.sequence;
    // Filtered replays end in a run the filter removed: close it before going live.
    if (membership.filteredThrough > membership.lastSent)
      session.queue.push(
        {
          type: "watermark",
          room,
          position: { epoch: position.epoch, sequence: membership.filteredThrough },
          after: membership.lastSent,
        },
        now,
      );
    if (membership.filteredThrough > 0n) membership.lastSent = membership.filteredThrough;
    membership.filteredThrough = 0n;
    const pending = changesAfterSnapshot(membership.pending, listedFrom, listedTo, present);
    membership.pending = [];
    membership.joining = false;
    broker.index.live(session, room);
    // Changes from now on reach it in batches; earlier ones were parked above.
    membership.presenceFrom = broker.presenceFrom();
    for (const event of pending) session.deliver(room, event, now);
  } catch (error) {
    if (session.rooms.get(room) === membership) {
      session.rooms.delete(room);
      broker.index.detach(session, room);
    }
    throw error;
  }
  // An inbox has a single reader: presence there would only tell its owner about itself.
  if (!stillJoined() || isInbox(room)) return;
  // Taken over from the session this one replaces: an update, not a leave and a join.
  const kind = session.adopted.delete(room) ? "update" : "join";
  await broker.callEngine((engine) => engine.presenceSet(room, session.presenceEntry(), kind));
}


/** Starts delivering every room matching `pattern`; announced by a `subscribed` event for the pattern itself. */
export async function joinPattern(broker: MembershipContext, session: Session, pattern: string, filter: MessageFilter | undefined): Promise<void> {
  session.patterns.set(pattern, { filter });
  try {
    await broker.index.attach(session, pattern);
  } catch (error) {
    leavePattern(broker, session, pattern, false);
    throw error;
  }
  if (session.patterns.has(pattern))
    session.queue.push({ type: "subscribed", room: pattern, position: { epoch: "", sequence: 0n }, recovered: false, pattern }, broker.now());
}

/** Stops delivering `pattern` and the rooms it alone brought in; `notify` tells the session (`unsubscribed`). */
function leavePattern(broker: MembershipContext, session: Session, pattern: string, notify: boolean): void {
  if (!session.patterns.delete(pattern)) return;
  for (const [room, membership] of session.rooms) if (membership.viaPattern === pattern) session.rooms.delete(room);
  if (notify) session.queue.push({ type: "unsubscribed", room: pattern }, broker.now());
  broker.index.detach(session, pattern);
}

/**
 * Leaves rooms and patterns (the patterns first, with the rooms they alone
 * brought in); `notify` tells the session (`unsubscribed`). Every room is
 * left even if removing one's presence entry fails; then the first failure
 * is thrown.
 */
export async function leaveRooms(broker: MembershipContext, session: Session, rooms: string[], notify: boolean, keepPresence = false): Promise<void> {
  for (const room of rooms) if (isPattern(room)) leavePattern(broker, session, room, notify);
  const left = await Promise.allSettled(rooms.filter((room) => !isPattern(room)).map((room) => leaveRoom(broker, session, room, notify, keepPresence)));
  for (const result of left) if (result.status === "rejected") throw result.reason;
}

/** Leaves one room; its presence entry goes too unless `keepPresence` (held for a reconnect's grace period). */
async function leaveRoom(broker: MembershipContext, session: Session, room: string, notify: boolean, keepPresence = false): Promise<void> {
  if (!session.rooms.delete(room)) return;
  if (notify) session.queue.push({ type: "unsubscribed", room }, broker.now());
  broker.index.detach(session, room);
  if (!keepPresence) await broker.callEngine((engine) => engine.presenceRemove(room, session.presenceId));
}

/** Sets a session's state in every room it holds and tells the rooms. */
export async function setPresence(broker: MembershipContext, session: Session, state: "online" | "away"): Promise<void> {
  const now = broker.now();
  if (session.presenceState !== state) session.stateSinceMs = now;
  session.presenceState = state;
  session.lastActiveMs = now;
  const entry = session.presenceEntry();
  await Promise.all(session.presenceRooms().map((room) => broker.callEngine((engine) => engine.presenceSet(room, entry, "update"))));
}

/**
 * Acknowledges, for the session's durable subscriber, everything up to each
 * position. Stale epochs are ignored: the room was reset meanwhile.
 */
export async function acknowledge(
  broker: MembershipContext,
  session: Session,
  acks: Array<{ room: string; position: Position | undefined }>,
): Promise<void> {
  const subscriber = session.durableKey;
  if (subscriber === undefined)
    throw new BrokerError("failed_precondition", "this session is not durable: subscribe with a subscriber name to use Ack", {
      reason: "NOT_DURABLE",
    });
  const valid = acks.map(({ room, position }, i) => {
    validateRoom(room, `acks[${i}].room`);
    if (!position) throw invalidArgument(`acks[${i}].position: required`, "INVALID_POSITION", { field: `acks[${i}].position` });
    const membership = session.rooms.get(room);
    if (!membership) throw invalidArgument(`acks[${i}].room: the session does not hold "${room}"`, "ROOM_NOT_HELD", { field: `acks[${i}].room` });
    return { membership, position };
  });
  await Promise.all(
    valid.map(async ({ membership, position }) => {
      if (position.epoch !== membership.epoch) return;
      session.acknowledge(membership, position.sequence);
      await broker.callEngine((engine) => engine.ackSet(subscriber, membership.room, position));
    }),
  );
}
