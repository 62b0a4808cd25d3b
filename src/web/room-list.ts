import { el } from "./dom.js";

/** The rooms column: one button per room (the inbox first, as "Private messages"), unread counts, and a leave button. */
export function renderRoomList(
  list: HTMLElement,
  rooms: Array<{ room: string; unread: number }>,
  options: { current: string; inbox: string; select: (room: string) => void; leave: (room: string) => void },
): void {
  list.replaceChildren(
    ...rooms.map(({ room, unread }) => {
      const label = room === options.inbox ? "Private messages" : `#${room}`;
      const button = el("button", { className: "room-button", data: { room } }, [
        el("span", { text: label }),
        ...(unread > 0 ? [el("span", { className: "badge", text: String(unread), title: `${unread} unread` })] : []),
      ]);
      button.type = "button";
      if (room === options.current) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => options.select(room));
      const item = el("li", {}, [button]);
      if (room !== options.inbox) {
        // × for the eye; the label says which room for a screen reader.
        const leave = el("button", { className: "leave", text: "×", title: `Leave #${room}` });
        leave.type = "button";
        leave.setAttribute("aria-label", `Leave #${room}`);
        leave.addEventListener("click", () => options.leave(room));
        item.append(leave);
      }
      return item;
    }),
  );
}
