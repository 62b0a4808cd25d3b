import type { PresenceEntry } from "../../gen/es/seqcast/v1/types_pb.js";
import { el } from "./dom.js";
import { renderRoomList } from "./room-list.js";
import { renderEntry, type LogEntry, type RoomLog } from "./room-log.js";
import { renderWho } from "./who.js";

/** The page's elements (index.html) the view draws into; the page finds them (and binds the rest). */
export type ViewElements = Record<"status" | "me" | "meName" | "chatView" | "roomList" | "roomTitle" | "log" | "whoTitle" | "whoList", HTMLElement> & {
  awayToggle: HTMLButtonElement;
  composerInput: HTMLInputElement;
};

/** What the view draws: the chat page's state, read afresh at each render, and what the room list's buttons do. */
export interface ChatViewState {
  /** The signed-in user. */
  readonly me: string;
  /** The user's inbox (private messages), listed and titled as "Private messages". */
  readonly inbox: string;
  /** Rooms in the order joined, the inbox first. */
  readonly logs: ReadonlyMap<string, RoomLog>;
  /** The room shown. */
  current(): string;
  /** Who is in a room, as the stream says. */
  presence(room: string): readonly PresenceEntry[];
  select(room: string): void;
  leave(room: string): void;
}

export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "closed";

/**
 * How the signed-in page looks: the rooms column, the current room's log,
 * who is here, the titles and the status line. It draws ChatPage's state
 * and never changes it, so chat-page.ts reads as what happens and this as
 * how it is shown.
 */
export class ChatView {
  constructor(
    private readonly ui: ViewElements,
    private readonly state: ChatViewState,
  ) {}

  show(): void {
    this.ui.me.hidden = false;
    this.ui.meName.textContent = this.state.me;
    this.ui.chatView.hidden = false;
  }

  /** The page is about to be replaced by the sign-in form. */
  hide(): void {
    this.ui.chatView.hidden = true;
    this.ui.me.hidden = true;
  }

  setStatus(status: ConnectionStatus, text: string): void {
    this.ui.status.dataset.state = status;
    this.ui.status.textContent = text;
  }

  /** The away button says what pressing it does. */
  showAway(away: boolean): void {
    this.ui.awayToggle.setAttribute("aria-pressed", String(away));
    this.ui.awayToggle.textContent = away ? "Back online" : "Set away";
  }

  /** A line added to the current room's log (its RoomLog already holds it). */
  append(entry: LogEntry): void {
    const list = this.ui.log;
    // Follow new lines only when the reader is at the bottom; someone scrolled up is reading.
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(renderEntry(entry, this.state.me));
    while (list.childElementCount > (this.state.logs.get(this.state.current())?.entries.length ?? 0)) list.firstElementChild?.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  renderLogIfCurrent(room: string): void {
    if (room === this.state.current()) this.renderLog();
  }

  renderAll(): void {
    this.renderRooms();
    this.renderLog();
    this.renderWho();
    const current = this.state.current();
    const dm = current === this.state.inbox;
    this.ui.roomTitle.textContent = dm ? "Private messages" : `#${current}`;
    this.ui.composerInput.placeholder = dm
      ? "@name text: a private message (Enter to send)"
      : `Message #${current} (Enter to send, @name text for a private message)`;
  }

  renderLog(): void {
    const entries = this.state.logs.get(this.state.current())?.entries ?? [];
    this.ui.log.replaceChildren(...entries.map((entry) => renderEntry(entry, this.state.me)));
    this.ui.log.scrollTop = this.ui.log.scrollHeight;
  }

  renderWho(): void {
    const current = this.state.current();
    if (current === this.state.inbox) {
      this.ui.whoTitle.textContent = "Private messages";
      this.ui.whoList.replaceChildren(el("li", { className: "detail nobody", text: "Only you see these; a private message reaches every device of its recipient." }));
      return;
    }
    this.ui.whoTitle.textContent = "Here now";
    renderWho(this.ui.whoList, this.state.presence(current), this.state.me);
  }

  renderRooms(): void {
    renderRoomList(this.ui.roomList, [...this.state.logs].map(([room, log]) => ({ room, unread: log.unread })), {
      current: this.state.current(),
      inbox: this.state.inbox,
      select: (room) => this.state.select(room),
      leave: (room) => this.state.leave(room),
    });
  }
}
