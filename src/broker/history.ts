import type { HistoryPage, HistoryQuery, Position, StoredMessage } from "../engine/engine.js";
import type { MessageFilter } from "./filter.js";
import { invalidArgument } from "./errors.js";
import { TimeSlice } from "./time-slice.js";

/** Reads one page of a room's history (the engine, behind the broker's error mapping). */
export type ReadHistory = (room: string, query: HistoryQuery) => Promise<HistoryPage>;

/** Page size of replays and filtered reads. */
export const PAGE = 1000;

/** A GetHistory request, as the broker takes it (Broker.history). */
export interface HistoryInput {
  room: string;
  after: bigint;
  before: bigint;
  /** 0 = default (100). */
  limit: number;
  direction: "forward" | "backward";
  /** CEL expression; only matching messages are returned. */
  filter?: string;
}

const DEFAULT_HISTORY_LIMIT = 100;
const MAX_HISTORY_LIMIT = 1000;

/** The engine's query for a GetHistory request; INVALID_ARGUMENT for a limit over 1,000 or a range with no sequence in it. */
export function historyQuery(input: HistoryInput): HistoryQuery {
  if (input.limit > MAX_HISTORY_LIMIT)
    throw invalidArgument(`limit: ${input.limit}, at most ${MAX_HISTORY_LIMIT} allowed`, "INVALID_REQUEST", { field: "limit" });
  if (input.before !== 0n && input.before <= input.after + 1n)
    throw invalidArgument(
      `empty range: no sequence lies between after_sequence ${input.after} and before_sequence ${input.before}`,
      "INVALID_POSITION",
    );
  return {
    after: input.after,
    before: input.before,
    limit: input.limit === 0 ? DEFAULT_HISTORY_LIMIT : input.limit,
    direction: input.direction,
  };
}

/**
 * The first page of a replay: messages after `since` (at most PAGE), or
 * undefined when the replay cannot start where it must (other epoch, the
 * next message already trimmed, a position from the future). An empty page
 * means there is nothing to replay. A position of epoch "" (the room had
 * no lineage when the client last saw it) replays the current lineage from
 * its start.
 */
export async function firstReplayPage(read: ReadHistory, room: string, since: Position, position: Position): Promise<StoredMessage[] | undefined> {
  // ("", 0) was read before the room had a lineage: its first lineage starts at 1, so nothing of it was seen yet.
  if (since.epoch === "" && since.sequence === 0n) since = { epoch: position.epoch, sequence: 0n };
  if (since.epoch !== position.epoch || since.sequence > position.sequence) return undefined;
  if (since.sequence === position.sequence) return [];
  return nextReplayPage(read, room, since.sequence, position);
}

/**
 * The page after `after` of a replay up to `position`: dense from after + 1,
 * or undefined when that message is gone (trimmed or cleared meanwhile).
 */
export async function nextReplayPage(read: ReadHistory, room: string, after: bigint, position: Position): Promise<StoredMessage[] | undefined> {
  if (after >= position.sequence) return [];
  const page = await read(room, { after, before: position.sequence + 1n, limit: PAGE, direction: "forward" });
  const first = page.messages[0];
  if (page.position.epoch !== position.epoch || !first || first.sequence !== after + 1n) return undefined;
  return page.messages;
}

/**
 * Pages through the range until `limit` messages matched or it is exhausted,
 * giving the event loop back between slices of evaluations.
 */
export async function filteredPage(
  read: ReadHistory,
  room: string,
  query: HistoryQuery,
  filter: MessageFilter,
): Promise<HistoryPage> {
  const matched: StoredMessage[] = [];
  let { after, before } = query;
  const slice = new TimeSlice();
  for (;;) {
    const page = await read(room, { after, before, limit: PAGE, direction: query.direction });
    const ordered = query.direction === "forward" ? page.messages : [...page.messages].reverse();
    for (let i = 0; i < ordered.length; i++) {
      if (slice.due()) await slice.yield();
      if (filter(ordered[i]!) !== "match") continue;
      matched.push(ordered[i]!);
      if (matched.length === query.limit) {
        const hasMore = i < ordered.length - 1 || page.hasMore;
        if (query.direction === "backward") matched.reverse();
        return { ...page, messages: matched, hasMore };
      }
    }
    if (!page.hasMore || ordered.length === 0) {
      if (query.direction === "backward") matched.reverse();
      return { ...page, messages: matched, hasMore: false };
    }
    if (query.direction === "forward") after = ordered.at(-1)!.sequence;
    else before = ordered.at(-1)!.sequence;
  }
}
