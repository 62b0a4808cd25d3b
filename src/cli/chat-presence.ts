import type { PresenceEntry } from "../../gen/es/seqcast/v1/types_pb.js";
import { PresenceState } from "../../gen/es/seqcast/v1/types_pb.js";
import { plural, printable } from "./chat-format.js";

/**
 * Which presence changes are news for the person at the terminal, per
 * room: users (not sessions) joining, leaving, going away and coming back.
 * A second device of someone already here is no news, nor is the reader's
 * own presence.
 *
 * After our own reconnect the broker's list (subscribed.present) may lack
 * users who were here before: after a broker restart everyone reconnects at
 * their own pace. They are not announced as gone; whoever comes back within
 * the return grace comes back silently, and only those who do not are then
 * reported as gone (expireReturning).
 */
export const RETURN_GRACE_MS = 30_000;

type State = "online" | "away";

interface RoomNews {
  /** Users the reader was told are here, with the state last shown. */
  shown: Map<string, State>;
  /** Shown before our reconnect and missing from the list after it. */
  returning: Set<string>;
}

export class PresenceNotices {
  private readonly rooms = new Map<string, RoomNews>();

  constructor(private readonly me: string) {}

  /**
   * The room's list at a `subscribed`. The first time: the line that says
   * who is already here. After a reconnect: nothing (see the class comment).
   */
  subscribed(room: string, present: readonly PresenceEntry[]): string | undefined {
    const others = present.filter((e) => e.user !== this.me);
    const states = userStates(others);
    const news = this.rooms.get(room);
    if (!news) {
      this.rooms.set(room, { shown: states, returning: new Set() });
      return others.length === 0 ? `* nobody else is in ${room}` : `* here: ${describeUsers(others)}`;
    }
    for (const user of news.shown.keys()) if (!states.has(user)) news.returning.add(user);
    for (const [user, state] of states) news.shown.set(user, state);
    return undefined;
  }

  /** A presence event, with the room's sessions after it: the line to print, if it is news. */
  changed(room: string, kind: "join" | "leave" | "update", entry: PresenceEntry, sessions: readonly PresenceEntry[]): string | undefined {
    const news = this.rooms.get(room);
    const user = entry.user;
    if (!news || user === this.me) return undefined;
    const state = userStates(sessions.filter((e) => e.user === user)).get(user);
    const name = printable(user);
    if (kind === "leave") {
      if (state) news.shown.set(user, state); // another device of theirs is still here
      else if (news.shown.delete(user)) {
        news.returning.delete(user);
        return `* ${name} left ${room}`;
      }
      return undefined;
    }
    if (!state) return undefined;
    const before = news.shown.get(user);
    news.shown.set(user, state);
    news.returning.delete(user);
    if (before === undefined) return kind === "join" ? `* ${name} joined ${room}` : undefined;
    return before !== state ? `* ${name} is ${state} in ${room}` : undefined;
  }

  /** The return grace after our reconnect is over: users still missing are gone. */
  expireReturning(room: string, sessions: readonly PresenceEntry[]): string[] {
    const news = this.rooms.get(room);
    if (!news) return [];
    const lines: string[] = [];
    for (const user of news.returning) {
      if (sessions.some((e) => e.user === user)) continue;
      news.shown.delete(user);
      lines.push(`* ${printable(user)} left ${room}`);
    }
    news.returning.clear();
    return lines;
  }

  forget(room: string): void {
    this.rooms.delete(room);
  }
}

/** Per user: away only when every session of theirs is. */
function userStates(entries: readonly PresenceEntry[]): Map<string, State> {
  const states = new Map<string, State>();
  for (const e of entries) if (states.get(e.user) !== "online") states.set(e.user, e.state === PresenceState.AWAY ? "away" : "online");
  return states;
}

/** `ann (phone), bob (2 sessions, away)`: per user, alphabetical. */
export function describeUsers(entries: readonly PresenceEntry[]): string {
  const byUser = new Map<string, PresenceEntry[]>();
  for (const entry of entries) byUser.set(entry.user, [...(byUser.get(entry.user) ?? []), entry]);
  return [...byUser.keys()]
    .sort()
    .map((user) => {
      const sessions = byUser.get(user)!;
      const details = [
        sessions.length > 1 ? plural(sessions.length, "session") : sessions[0]!.device ? printable(sessions[0]!.device) : "",
        sessions.every((e) => e.state === PresenceState.AWAY) ? "away" : "",
      ].filter((d) => d !== "");
      return details.length > 0 ? `${printable(user)} (${details.join(", ")})` : printable(user);
    })
    .join(", ");
}
