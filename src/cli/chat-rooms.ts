import { Code, ConnectError } from "@connectrpc/connect";
import { roomNameError } from "../names/rooms.js";
import type { Subscription } from "../client/index.js";
import { printable } from "./chat-format.js";
import type { PresenceNotices } from "./chat-presence.js";

/** A room this chat has joined. */
interface JoinedRoom {
  /** Its first `subscribed` event was printed (later ones are resumes after reconnects). */
  announced: boolean;
  /** Settles with that first `subscribed` event, or when the join fails. */
  settle: (error?: unknown) => void;
}

/**
 * The rooms the chat is in, in join order, and the current one (where a
 * plain line goes): /join, /leave, /room and /rooms. A join is only done
 * once the room is live on the stream, so that lines piped after it come
 * back in order; one made while no session was live is repeated once
 * connected (see joinDeferred).
 */
export class ChatRooms {
  private readonly joined = new Map<string, JoinedRoom>();
  private currentRoom: string | undefined;
  /** Rooms joined while no session was live (see joinDeferred). */
  private readonly deferred = new Set<string>();

  /** `stopped` ends the wait of a join in progress (/quit, Ctrl-C). */
  constructor(
    private readonly subscription: Subscription,
    private readonly notices: PresenceNotices,
    private readonly print: (line: string) => void,
    private readonly stopped: Promise<void>,
  ) {}

  /** Where a plain line goes; undefined until a room is joined (or after the last is left). */
  get current(): string | undefined {
    return this.currentRoom;
  }

  has(room: string): boolean {
    return this.joined.has(room);
  }

  /** The room is joined and was live at least once: its presence is on our stream. */
  isLive(room: string): boolean {
    return this.joined.get(room)?.announced ?? false;
  }

  /**
   * A `subscribed` event for a joined room: true for the first one (the join
   * is done; the caller says so), false for a resume after a reconnect.
   */
  announce(room: string): boolean {
    const joined = this.joined.get(room);
    if (!joined || joined.announced) return false;
    joined.announced = true;
    joined.settle();
    return true;
  }

  async join(room: string): Promise<void> {
    if (this.joined.has(room)) return this.switchTo(room);
    // Validate here, not only at the broker: a join made while disconnected is only sent with the
    // next reconnect, and a bad room there would end the whole session.
    const badRoom = roomNameError(room);
    if (badRoom) throw new ConnectError(`room: ${badRoom}`, Code.InvalidArgument);
    const previous = this.currentRoom;
    let settle!: (error?: unknown) => void;
    const subscribed = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    // Registered before the call: the `subscribed` event and the first messages may beat its reply.
    this.joined.set(room, { announced: false, settle });
    this.currentRoom = room;
    try {
      await this.subscription.join(room);
    } catch (error) {
      this.joined.delete(room);
      if (this.currentRoom === room) this.currentRoom = previous;
      throw error;
    }
    if (!this.subscription.sessionId) {
      // The SDK sends it with the next Subscribe; joinDeferred() makes sure (see there).
      this.deferred.add(room);
      this.print(`* joining ${room} once connected`);
    }
    // The next lines wait until the room is live, so that a message sent right after /join (piped
    // input) comes back on the stream like any other; /quit and Ctrl-C still end the wait.
    await Promise.race([subscribed, this.stopped]);
  }

  /**
   * A join made while no session was live is only queued in the SDK, which
   * puts it into its next Subscribe request. If that request was already on
   * its way, the room would be missing from the new session; joining again
   * once connected covers that (a join of a room already held is a no-op).
   */
  joinDeferred(): void {
    for (const room of this.deferred) {
      this.subscription.join(room).catch((error: unknown) => {
        const joined = this.joined.get(room);
        if (!joined || joined.announced) return;
        this.joined.delete(room);
        if (this.currentRoom === room) this.currentRoom = [...this.joined.keys()].at(-1);
        joined.settle(error); // the waiting /join prints it
      });
    }
    this.deferred.clear();
  }

  async leave(name: string | undefined): Promise<void> {
    const room = name ?? this.currentRoom;
    if (!room) return this.print("! usage: /leave <room> (no current room)");
    if (!this.joined.has(room)) return this.print(`! not in ${printable(room)}`);
    const wasCurrent = this.currentRoom === room;
    this.joined.delete(room);
    this.deferred.delete(room);
    this.notices.forget(room);
    if (wasCurrent) this.currentRoom = [...this.joined.keys()].at(-1);
    try {
      // The SDK forgets the room even if the call fails: nothing of it is shown any more.
      await this.subscription.leave(room);
    } finally {
      this.print(`* left ${room}`);
      if (wasCurrent) this.print(this.currentRoom ? `* current room: ${this.currentRoom}` : "* no current room");
    }
  }

  async switchTo(room: string): Promise<void> {
    if (!this.joined.has(room)) return this.print(`! not in ${printable(room)}: /join ${printable(room)} first`);
    this.currentRoom = room;
    this.print(`* current room: ${room}`);
  }

  async list(): Promise<void> {
    if (this.joined.size === 0) return this.print("* no rooms joined: /join <room>");
    const names = [...this.joined.keys()].map((room) => (room === this.currentRoom ? `${room} (current)` : room));
    this.print(`* rooms: ${names.join(", ")}`);
  }
}
