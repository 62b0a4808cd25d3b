import { isInbox, roomNameError } from "../names/rooms.js";

// What this browser remembers of a user's chat between visits
// (localStorage, per user, unlike the tab-only token in sign-in.ts): the
// rooms joined and the one last shown, so a reload or a new tab opens
// where the user left off.

const roomsKey = (user: string) => `seqcast.rooms.${user}`;
const currentKey = (user: string) => `seqcast.current.${user}`;

export const savedRooms = {
  /** The rooms this user had joined in this browser (a first visit: #general). */
  get(user: string): string[] {
    try {
      const rooms = JSON.parse(localStorage.getItem(roomsKey(user)) ?? '["general"]') as unknown;
      if (Array.isArray(rooms)) return rooms.filter((r): r is string => typeof r === "string" && !isInbox(r) && roomNameError(r) === null);
    } catch {
      // A damaged entry: start over.
    }
    return ["general"];
  },
  /** `rooms` in the order joined, without the inbox (it is always there). */
  set(user: string, rooms: string[]): void {
    localStorage.setItem(roomsKey(user), JSON.stringify(rooms));
  },
  /** The room shown last; the caller checks it is still one of the rooms. */
  current(user: string): string | null {
    return localStorage.getItem(currentKey(user));
  },
  setCurrent(user: string, room: string): void {
    localStorage.setItem(currentKey(user), room);
  },
};
