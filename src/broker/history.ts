import type { HistoryPage, HistoryQuery, Position, StoredMessage } from "../engine/engine.js";
import type { MessageFilter } from "./filter.js";

/** Reads one page of a room's history (the engine, behind the broker's error mapping). */
export type ReadHistory = (room: string, query: HistoryQuery) => Promise<HistoryPage>;

/** Page size of replays and filtered reads. */
export const PAGE = 1000;

/**
 * Messages after `since` up to `position`, or undefined when they can no
 * longer all be replayed (other epoch, trimmed, or a position from the future).
 */
export async function replayAfter(
  read: ReadHistory,
  room: string,
  since: Position,
  position: Position,
): Promise<StoredMessage[] | undefined> {
  if (since.epoch !== position.epoch || since.sequence > position.sequence) return undefined;
  const messages: StoredMessage[] = [];
  let after = since.sequence;
  while (after < position.sequence) {
    const page = await read(room, { after, before: position.sequence + 1n, limit: PAGE, direction: "forward" });
    const first = page.messages[0];
    if (page.position.epoch !== position.epoch || !first || first.sequence !== after + 1n) return undefined;
    messages.push(...page.messages);
    after = page.messages[page.messages.length - 1]!.sequence;
    if (!page.hasMore) break;
  }
  return after === position.sequence ? messages : undefined;
}

/** Pages through the range until `limit` messages matched or it is exhausted. */
export async function filteredPage(
  read: ReadHistory,
  room: string,
  query: HistoryQuery,
  filter: MessageFilter,
): Promise<HistoryPage> {
  const matched: StoredMessage[] = [];
  let { after, before } = query;
  for (;;) {
    const page = await read(room, { after, before, limit: PAGE, direction: query.direction });
    const ordered = query.direction === "forward" ? page.messages : [...page.messages].reverse();
    for (let i = 0; i < ordered.length; i++) {
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
