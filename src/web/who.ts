import type { PresenceEntry } from "../../gen/es/seqcast/v1/types_pb.js";
import { el } from "./dom.js";
import { plural, presentUsers } from "./format.js";

/** The "Here now" list: one line per user, away when all their sessions are. */
export function renderWho(list: HTMLElement, entries: readonly PresenceEntry[], me: string): void {
  const users = presentUsers(entries);
  list.replaceChildren(
    ...users.map((u) => {
      const details = [u.away ? "away" : "online", u.sessions > 1 ? plural(u.sessions, "device") : u.devices[0] ?? ""].filter(Boolean);
      return el("li", { className: u.away ? "away" : "", data: { user: u.user, state: u.away ? "away" : "online" } }, [
        u.user === me ? `${u.user} (you) ` : `${u.user} `,
        el("span", { className: "detail", text: details.join(", ") }),
      ]);
    }),
  );
  if (users.length === 0) list.replaceChildren(el("li", { className: "detail nobody", text: "Nobody yet." }));
}
