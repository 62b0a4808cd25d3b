import type { PresenceEntry } from "../../gen/es/seqcast/v1/types_pb.js";
import { PresenceState } from "../../gen/es/seqcast/v1/types_pb.js";

// Words and numbers as the page shows them. Pure: unit-tested in Node
// (test/unit/web-format.test.ts), used by the page in the browser.

export const plural = (n: number | bigint, word: string) => `${n} ${word}${n === 1 || n === 1n ? "" : "s"}`;

const pad = (n: number) => String(n).padStart(2, "0");

/** `14:05` for today, `Mar 3, 14:05` for another day: local time, as a reader of a chat expects. */
export function shortTime(date: Date, now: Date = new Date()): string {
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  if (date.toDateString() === now.toDateString()) return time;
  const day = date.toLocaleDateString(undefined, { month: "short", day: "numeric", ...(date.getFullYear() !== now.getFullYear() ? { year: "numeric" } : {}) });
  return `${day}, ${time}`;
}

/** What a reset means to someone reading the room. */
export function resetNote(reason: "lost" | "epoch_changed", skipped: bigint): string {
  return reason === "lost"
    ? `${plural(skipped, "message")} lost: the broker no longer had ${skipped === 1n ? "it" : "them"}.`
    : "The room's history was cleared; earlier messages are gone.";
}

export interface PresentUser {
  user: string;
  /** Every session of the user is away. */
  away: boolean;
  /** Device labels of the user's sessions (empty labels left out). */
  devices: string[];
  sessions: number;
}

/** One line per user, alphabetical: a user is away only when all their sessions are. */
export function presentUsers(entries: readonly PresenceEntry[]): PresentUser[] {
  const byUser = new Map<string, PresenceEntry[]>();
  for (const entry of entries) byUser.set(entry.user, [...(byUser.get(entry.user) ?? []), entry]);
  return [...byUser]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([user, sessions]) => ({
      user,
      away: sessions.every((s) => s.state === PresenceState.AWAY),
      devices: sessions.map((s) => s.device).filter((d) => d !== ""),
      sessions: sessions.length,
    }));
}

/** The `sub` of a JWT, to greet its holder before the broker confirms it; undefined if it is not a JWT. */
export function tokenSubject(token: string): string | undefined {
  const payload = token.trim().split(".")[1];
  if (!payload) return undefined;
  try {
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === "string" && sub !== "" ? sub : undefined;
  } catch {
    return undefined;
  }
}
