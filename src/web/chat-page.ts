import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { MessageSchema, type Message } from "../../gen/es/seqcast/v1/types_pb.js";
import { createWebSeqcastClient, SubscriptionState, type SeqcastClient, type Subscription, type SubscriptionEvent } from "../client/web.js";
import { isInbox, roomNameError } from "../names/rooms.js";
import { ChatView } from "./chat-view.js";
import { compose } from "./compose.js";
import { byId } from "./dom.js";
import { resetNote } from "./format.js";
import { RoomLog, type LogEntry } from "./room-log.js";
import { savedRooms } from "./saved-rooms.js";
import type { Credentials } from "./sign-in.js";

/**
 * The signed-in page: one subscription (the SDK's, with its reorder buffer)
 * holding the user's rooms and inbox, the rooms list, the current room's
 * messages, who is here, and the message box. Everything shown comes from
 * the subscription's events, so the page shows what the stream says, in
 * its order. How it is drawn is ChatView's (chat-view.ts).
 */

/** Messages shown from before the page joined a room (the SDK's `backlog`). */
const BACKLOG = 50;
/** Idle time after which the user shows as away (any key or click brings them back). */
const AWAY_AFTER_MS = 5 * 60_000;
/** Activity is reported at most this often. */
const ACTIVITY_THROTTLE_MS = 10_000;

const ui = () => ({
  status: byId("status"),
  me: byId("me"),
  meName: byId("me-name"),
  awayToggle: byId<HTMLButtonElement>("away-toggle"),
  signOut: byId<HTMLButtonElement>("sign-out"),
  chatView: byId("chat-view"),
  roomList: byId("room-list"),
  joinForm: byId<HTMLFormElement>("join-form"),
  joinInput: byId<HTMLInputElement>("join-input"),
  joinError: byId("join-error"),
  roomTitle: byId("room-title"),
  log: byId("log"),
  composer: byId<HTMLFormElement>("composer"),
  composerInput: byId<HTMLInputElement>("composer-input"),
  composerError: byId("composer-error"),
  composerNote: byId("composer-note"),
  whoTitle: byId("who-title"),
  whoList: byId("who-list"),
});

export class ChatPage {
  private readonly ui = ui();
  private readonly view: ChatView;
  private readonly client: SeqcastClient;
  private readonly sub: Subscription;
  /** Rooms in the order joined; the inbox (private messages) first. */
  private readonly logs = new Map<string, RoomLog>();
  /** Rooms whose first `subscribed` was shown. */
  private readonly announced = new Set<string>();
  private readonly inbox: string;
  private current: string;
  private manualAway = false;
  private lastActivity = 0;
  private readonly abort = new AbortController();

  constructor(
    private readonly me: Credentials,
    private readonly onSignOut: (message?: string) => void,
  ) {
    this.inbox = `@${me.user}`;
    this.view = new ChatView(this.ui, {
      me: me.user,
      inbox: this.inbox,
      logs: this.logs,
      current: () => this.current,
      presence: (room) => this.sub.presence(room),
      select: (room) => this.select(room),
      leave: (room) => void this.leave(room),
    });
    const rooms = savedRooms.get(me.user);
    for (const room of [this.inbox, ...rooms]) this.logs.set(room, new RoomLog());
    this.current = savedRooms.current(me.user) ?? rooms[0] ?? this.inbox;
    if (!this.logs.has(this.current)) this.current = rooms[0] ?? this.inbox;
    // Publishes are retried until acknowledged: a line typed while the broker is away waits for it, marked as sending.
    this.client = createWebSeqcastClient({ baseUrl: location.origin, token: me.token, maxPublishAttempts: Infinity });
    this.sub = this.client.subscribe([...this.logs.keys()], { device: "browser", backlog: BACKLOG, awayAfterMs: AWAY_AFTER_MS });
    this.sub.on((event) => this.onEvent(event));
    this.bind();
    this.view.show();
    this.view.setStatus("connecting", `Connecting to ${location.origin}…`);
    this.view.renderAll();
    this.ui.composerInput.focus();
  }

  // ---- subscription events -------------------------------------------------

  private onEvent(event: SubscriptionEvent): void {
    switch (event.type) {
      case "state":
        return this.onState(event.to, event.reason, event.error);
      case "subscribed":
        if (!this.announced.has(event.room) && !isInbox(event.room)) {
          this.announced.add(event.room);
          this.addEntry(event.room, { kind: "note", text: `You joined #${event.room}.` });
        }
        if (event.room === this.current) this.view.renderWho();
        return;
      case "backlog":
        for (const message of event.messages) this.addEntry(event.room, { kind: "message", message, earlier: true, direct: this.direction(message) }, false);
        return;
      case "message": {
        const log = this.logs.get(event.room);
        // Our own line is acknowledged: its pending copy gives way to the real one, in the stream's order.
        if (log && event.message.clientMessageId !== "" && log.settle(event.message.clientMessageId)) this.view.renderLogIfCurrent(event.room);
        this.addEntry(event.room, { kind: "message", message: event.message, direct: this.direction(event.message) }, event.message.sender !== this.me.user);
        return;
      }
      case "reset":
        this.addEntry(event.room, { kind: "note", text: resetNote(event.reason, event.skipped), warn: true });
        return;
      case "presence":
        if (event.room === this.current) this.view.renderWho();
        return;
      case "unsubscribed":
        return;
      case "warning":
        // Something the SDK recovers from by itself (a gap fill that failed and is retried).
        console.warn("seqcast:", event.error.message);
        return;
    }
  }

  private onState(to: SubscriptionState, reason: string, error?: ConnectError): void {
    const url = location.origin;
    if (to === SubscriptionState.Connected) return this.view.setStatus("connected", `Connected to ${url}`);
    if (to === SubscriptionState.Reconnecting)
      return this.view.setStatus("reconnecting", `Cannot reach the broker at ${url} (${plainReason(error, reason)}); retrying. What you send meanwhile is kept until it is back.`);
    if (to !== SubscriptionState.Closed || this.abort.signal.aborted) return;
    if (error && (error.code === Code.Unauthenticated || error.code === Code.PermissionDenied)) {
      this.stop();
      return this.onSignOut(`The broker refused your token: ${error.rawMessage}`);
    }
    this.view.setStatus("closed", `Disconnected: ${plainReason(error, reason)}. Reload the page to connect again.`);
  }

  /** An inbox message is one received; ours to others are added when sent (see send). */
  private direction(message: Message): { way: "in" | "out"; peer: string } | undefined {
    return isInbox(message.room) ? { way: "in", peer: message.sender } : undefined;
  }

  // ---- what the user does --------------------------------------------------

  private bind(): void {
    const { signal } = this.abort;
    this.ui.composer.addEventListener("submit", (e) => (e.preventDefault(), this.submit()), { signal });
    this.ui.composerInput.addEventListener(
      "keydown",
      (e) => {
        if (e.key === "Escape") this.ui.composerInput.value = "";
      },
      { signal },
    );
    this.ui.joinForm.addEventListener(
      "submit",
      (e) => {
        e.preventDefault();
        const room = this.ui.joinInput.value.trim();
        void this.join(room, this.ui.joinError).then((ok) => ok && (this.ui.joinInput.value = ""));
      },
      { signal },
    );
    this.ui.signOut.addEventListener("click", () => void this.signOut(), { signal });
    this.ui.awayToggle.addEventListener("click", () => void this.setAway(!this.manualAway), { signal });
    document.addEventListener("keydown", (e) => this.shortcut(e), { signal });
    for (const type of ["keydown", "pointerdown"] as const) document.addEventListener(type, () => this.active(), { signal, passive: true });
  }

  private shortcut(e: KeyboardEvent): void {
    if (!e.altKey || e.ctrlKey || e.metaKey) return;
    const rooms = [...this.logs.keys()];
    const at = rooms.indexOf(this.current);
    if (e.key === "ArrowUp" || e.key === "ArrowDown") {
      const next = rooms[(at + (e.key === "ArrowUp" ? rooms.length - 1 : 1)) % rooms.length];
      if (next) this.select(next);
    } else if (e.code === "KeyJ") this.ui.joinInput.focus();
    else if (e.code === "KeyM") this.ui.composerInput.focus();
    else return;
    e.preventDefault();
  }

  /** Any key or click: the user is here (unless they said they are away). */
  private active(): void {
    const now = Date.now();
    if (this.manualAway || now - this.lastActivity < ACTIVITY_THROTTLE_MS) return;
    this.lastActivity = now;
    this.sub.markActive();
  }

  private submit(): void {
    const input = this.ui.composerInput;
    const composed = compose(input.value);
    this.ui.composerError.textContent = "";
    this.ui.composerNote.textContent = "";
    switch (composed.kind) {
      case "nothing":
        return;
      case "error":
        this.ui.composerError.textContent = composed.message;
        return;
      case "message":
        if (this.current === this.inbox) {
          this.ui.composerError.textContent = "This is where private messages arrive: write \"@name text\" to send one, or pick a room.";
          return;
        }
        this.send(this.current, composed.text);
        break;
      case "direct":
        this.send(`@${composed.user}`, composed.text, composed.user);
        if (this.current !== this.inbox) this.ui.composerNote.textContent = `Sent privately to ${composed.user} (see Private messages).`;
        break;
      case "join":
        void this.join(composed.room, this.ui.composerError);
        break;
      case "leave":
        if (this.current === this.inbox) {
          this.ui.composerError.textContent = "Private messages cannot be left; pick a room to leave.";
          return;
        }
        void this.leave(this.current);
        break;
      case "away":
      case "back":
        void this.setAway(composed.kind === "away");
        break;
    }
    input.value = "";
    if (composed.kind === "message" && this.manualAway) void this.setAway(false);
  }

  /**
   * Publishes a line, shown as "sending…" until the broker acknowledges it:
   * for a room, until the message comes back on the stream; for a private
   * message (which goes to the recipient's inbox, not ours), until Publish returns.
   */
  private send(room: string, text: string, to?: string): void {
    const id = globalThis.crypto.randomUUID();
    const logRoom = to ? this.inbox : room;
    this.addEntry(logRoom, { kind: "pending", id, text, to }, false);
    this.client.publish(room, text, { clientMessageId: id }).then(
      (result) => {
        if (!to) return;
        const log = this.logs.get(this.inbox);
        log?.settle(id);
        const message = create(MessageSchema, { room, sender: this.me.user, content: text, sequence: result.sequence, time: timestampNow(), clientMessageId: id });
        this.addEntry(this.inbox, { kind: "message", message, direct: { way: "out", peer: to } }, false);
        this.view.renderLogIfCurrent(this.inbox);
      },
      (error: unknown) => {
        this.logs.get(logRoom)?.fail(id, plainReason(ConnectError.from(error), ""));
        this.view.renderLogIfCurrent(logRoom);
      },
    );
  }

  /** Joins a room and shows it; false (with the reason in `errorAt`) when the broker refuses. */
  private async join(room: string, errorAt: HTMLElement): Promise<boolean> {
    errorAt.textContent = "";
    if (room === "") return false;
    if (isInbox(room)) {
      errorAt.textContent = "Private messages need no room: write \"@name text\".";
      return false;
    }
    const problem = roomNameError(room);
    if (problem) {
      errorAt.textContent = `Room ${problem}.`;
      return false;
    }
    if (this.logs.has(room)) {
      this.select(room);
      return true;
    }
    const previous = this.current;
    this.logs.set(room, new RoomLog());
    this.select(room);
    try {
      await this.sub.join(room);
      this.saveRooms();
      return true;
    } catch (error) {
      this.logs.delete(room);
      this.select(this.logs.has(previous) ? previous : this.inbox);
      errorAt.textContent = `Cannot join #${room}: ${ConnectError.from(error).rawMessage}`;
      return false;
    }
  }

  private async leave(room: string): Promise<void> {
    const rooms = [...this.logs.keys()];
    this.logs.delete(room);
    this.announced.delete(room);
    this.saveRooms();
    if (this.current === room) this.select(rooms[rooms.indexOf(room) - 1] ?? this.inbox);
    else this.view.renderRooms();
    await this.sub.leave(room).catch((error: unknown) => (this.ui.composerError.textContent = ConnectError.from(error).rawMessage));
  }

  private async setAway(away: boolean): Promise<void> {
    this.manualAway = away;
    this.view.showAway(away);
    await this.sub.setPresence(away ? "away" : "online").catch(() => {});
  }

  private async signOut(): Promise<void> {
    this.stop();
    // Says goodbye: the others see us leave at once.
    await this.sub.close();
    this.onSignOut();
  }

  /** Stops listening to the page (the page is about to be replaced by the sign-in form). */
  private stop(): void {
    this.abort.abort();
    this.view.hide();
    void this.sub.close();
  }

  private select(room: string): void {
    this.current = room;
    savedRooms.setCurrent(this.me.user, room);
    const log = this.logs.get(room);
    if (log) log.unread = 0;
    this.view.renderAll();
  }

  private saveRooms(): void {
    savedRooms.set(this.me.user, [...this.logs.keys()].filter((r) => r !== this.inbox));
  }

  /** Adds a line to a room's log: shown if the room is, else counted as unread (messages only). */
  private addEntry(room: string, entry: LogEntry, countUnread = true): void {
    const log = this.logs.get(room);
    if (!log) return;
    log.add(entry);
    if (room === this.current) this.view.append(entry);
    else if (countUnread && entry.kind === "message") {
      log.unread++;
      this.view.renderRooms();
    }
  }
}

/** An error in words a chat user can act on. */
function plainReason(error: ConnectError | undefined, fallback: string): string {
  if (!error) return fallback;
  // fetch() says only "Failed to fetch" (or "network error") when the broker is down.
  if (/fetch|network/i.test(error.rawMessage)) return "it is not answering";
  if (error.code === Code.Unavailable) return error.rawMessage.includes("shutting down") ? "it is restarting" : error.rawMessage;
  return error.rawMessage || fallback;
}
