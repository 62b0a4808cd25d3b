import readline from "node:readline";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Message, PresenceEntry } from "../../gen/es/seqcast/v1/types_pb.js";
import { PresenceState } from "../../gen/es/seqcast/v1/types_pb.js";
import { isInbox, roomNameError } from "../names/rooms.js";
import {
  createSeqcastClient,
  SubscriptionState,
  type SeqcastClient,
  type Subscription,
  type SubscriptionEvent,
} from "../client/index.js";
import { AWAY_AFTER_MS, chatToken, COMMANDS, DEFAULT_HISTORY, HELP, parseChatArgs, type ChatOptions } from "./chat-options.js";
import { errorLine, plural, printable, STATE_NAMES } from "./chat-format.js";

/** `seqcast chat`: resolves with the exit code (0 after /quit or end of input, 1 if the session failed for good). */
export async function chat(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const options = parseChatArgs(argv, env);
  if (!options) {
    console.log(HELP);
    return 0;
  }
  options.token = await chatToken(options, env);
  return new ChatApp(options, process.stdin, process.stdout).run();
}

/** A room this chat has joined. */
interface JoinedRoom {
  /** Its first `subscribed` event was printed (later ones are resumes after reconnects). */
  announced: boolean;
  /** Settles with that first `subscribed` event, or when the join fails. */
  settle: (error?: unknown) => void;
}

class ChatApp {
  private readonly client: SeqcastClient;
  private readonly subscription: Subscription;
  private readonly interactive: boolean;
  private rl: readline.Interface | undefined;
  /** Joined rooms in join order; the current room is one of them. */
  private readonly joined = new Map<string, JoinedRoom>();
  private current: string | undefined;
  /** Every session id this process has had: presence of our own (old) sessions is not news. */
  private readonly ownSessions = new Set<string>();
  /** Rooms joined while no session was live (see joinDeferred). */
  private readonly deferred = new Set<string>();
  /** Lines are handled one after another, in input order. */
  private queue: Promise<void> = Promise.resolve();
  private stopping = false;
  private exitCode = 0;
  private resolveStopped!: () => void;
  private readonly stopped = new Promise<void>((resolve) => (this.resolveStopped = resolve));

  constructor(
    private readonly options: ChatOptions,
    private readonly input: NodeJS.ReadableStream & { isTTY?: boolean },
    private readonly output: NodeJS.WritableStream & { isTTY?: boolean },
  ) {
    this.interactive = Boolean(input.isTTY && output.isTTY);
    this.client = createSeqcastClient({ baseUrl: options.url, token: options.token, protocol: options.protocol });
    // No rooms yet: every room goes through join(), which validates it first (see there).
    this.subscription = this.client.subscribe([], { device: options.device, awayAfterMs: AWAY_AFTER_MS });
    this.subscription.on((event) => this.onEvent(event));
  }

  async run(): Promise<number> {
    const rl = readline.createInterface({
      input: this.input,
      output: this.interactive ? this.output : undefined,
      terminal: this.interactive,
    });
    this.rl = rl;
    rl.setPrompt("> ");
    this.print(`* seqcast chat: ${this.options.user} at ${this.options.url} (/help for commands)`);
    // Private messages arrive in our own inbox, which only we may read.
    this.subscription.join(`@${this.options.user}`).catch((error: unknown) => this.print(errorLine(error)));
    if (this.options.room) {
      const room = this.options.room;
      this.enqueue(() => this.join(room));
    }
    rl.on("line", (line) => this.enqueue(() => this.handleLine(line)));
    rl.on("close", () => this.enqueue(async () => this.stop(0))); // end of input = /quit, after pending lines
    const interrupt = () => this.stop(0);
    rl.on("SIGINT", interrupt); // Ctrl-C on a terminal
    process.on("SIGINT", interrupt);
    process.on("SIGTERM", interrupt);

    await this.stopped;

    process.off("SIGINT", interrupt);
    process.off("SIGTERM", interrupt);
    this.rl = undefined;
    rl.close();
    // Ends the session: the broker sends our presence leaves to the others.
    await this.subscription.close();
    return this.exitCode;
  }

  // ---- output -------------------------------------------------------------

  private print(line: string): void {
    if (this.interactive && this.rl) {
      // Keep what the user is typing: clear the prompt line, print, redraw it below.
      readline.cursorTo(this.output, 0);
      readline.clearLine(this.output, 0);
      this.output.write(`${line}\n`);
      this.rl.prompt(true);
    } else {
      this.output.write(`${line}\n`);
    }
  }

  private formatMessage(room: string, message: Message): string {
    if (isInbox(room)) return `[dm] ${printable(message.sender)}: ${printable(message.content)}`;
    const where = room === this.current ? `${message.sequence}` : `${room}#${message.sequence}`;
    const body =
      message.content.length > 0 || message.payload.length === 0
        ? printable(message.content)
        : `<${plural(message.payload.length, "byte")} of payload>`;
    return `[${where}] ${printable(message.sender)}: ${body}`;
  }

  // ---- subscription events -----------------------------------------------

  private onEvent(event: SubscriptionEvent): void {
    switch (event.type) {
      case "state":
        if (event.to === SubscriptionState.Connected) {
          if (this.subscription.sessionId) this.ownSessions.add(this.subscription.sessionId);
          this.print("* connected");
          this.joinDeferred();
        } else if (event.to === SubscriptionState.Reconnecting) {
          this.print(`* reconnecting: ${event.reason}`);
        } else if (event.to === SubscriptionState.Closed && !this.stopping) {
          // A failure the SDK does not retry (e.g. the broker refused our identity).
          this.print(event.error ? errorLine(event.error) : `! session closed: ${event.reason}`);
          this.stop(1);
        }
        return;
      case "subscribed": {
        const joined = this.joined.get(event.room);
        // Later `subscribed` events are resumes after a reconnect; a `reset` tells if anything was lost.
        if (joined && !joined.announced) {
          joined.announced = true;
          joined.settle();
          this.print(`* joined ${event.room} (seq ${event.sequence})`);
        }
        return;
      }
      case "message":
        this.print(this.formatMessage(event.room, event.message));
        return;
      case "reset":
        this.print(
          event.reason === "lost"
            ? `! ${event.room}: ${plural(event.skipped, "message")} lost (history trimmed)`
            : `! ${event.room}: history was reset (new epoch)`,
        );
        return;
      case "presence":
        this.onPresence(event.room, event.kind, event.entry);
        return;
      case "unsubscribed":
        return; // the answer to our own /leave, which printed already
      case "warning":
        this.print(errorLine(event.error));
        return;
    }
  }

  private onPresence(room: string, kind: "join" | "leave" | "update", entry: PresenceEntry): void {
    if (this.ownSessions.has(entry.sessionId) || entry.sessionId === this.subscription.sessionId) return;
    const user = printable(entry.user);
    if (kind === "join") this.print(`* ${user} joined ${room}`);
    else if (kind === "leave") this.print(`* ${user} left ${room}`);
    else this.print(`* ${user} is ${STATE_NAMES[entry.state] ?? "here"} in ${room}`);
  }

  // ---- input ----------------------------------------------------------------

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue
      .then(() => (this.stopping ? undefined : task()))
      .catch((error: unknown) => this.print(errorLine(error)))
      .then(() => {
        if (!this.stopping) this.rl?.prompt(true);
      });
  }

  private stop(code: number): void {
    if (this.stopping) return;
    this.stopping = true;
    this.exitCode = code;
    this.resolveStopped();
  }

  private async handleLine(raw: string): Promise<void> {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") return;
    if (line.trim() !== "/away") this.subscription.markActive();
    if (line.startsWith("//")) return this.send(line.slice(1));
    const dm = /^@(\S+)\s+(.+)$/.exec(line);
    if (dm) return this.sendDirect(dm[1]!, dm[2]!);
    if (!line.startsWith("/")) return this.send(line);

    const [command = "", ...args] = line.slice(1).trim().split(/\s+/);
    switch (command) {
      case "join":
        if (args.length !== 1) return this.print("! usage: /join <room>");
        return this.join(args[0]!);
      case "leave":
        if (args.length > 1) return this.print("! usage: /leave [room]");
        return this.leave(args[0]);
      case "room":
        if (args.length !== 1) return this.print("! usage: /room <room>");
        return this.switchRoom(args[0]!);
      case "rooms":
        return this.listRooms();
      case "history":
        return this.history(args);
      case "who":
        if (args.length > 1) return this.print("! usage: /who [room]");
        return this.who(args[0]);
      case "dm": {
        const match = /^\/dm\s+(\S+)\s+(.+)$/.exec(line.trim());
        if (!match) return this.print("! usage: /dm <user> <text>");
        return this.sendDirect(match[1]!, match[2]!);
      }
      case "away":
        await this.subscription.setPresence("away");
        return this.print("* you are away");
      case "back":
        await this.subscription.setPresence("online");
        return this.print("* you are back");
      case "clear_history":
        if (args.length !== 1) return this.print("! usage: /clear_history <room>");
        return this.clearHistory(args[0]!);
      case "help":
        for (const text of COMMANDS.split("\n")) this.print(text);
        return;
      case "quit":
      case "exit":
        return this.stop(0);
      default:
        this.print(`! unknown command /${printable(command)} (try /help)`);
    }
  }

  private async send(content: string): Promise<void> {
    const room = this.current;
    if (!room) return this.print("! join a room first: /join <room>");
    // Nothing printed on success: our message shows when it comes back on the stream, in order.
    await this.client.publish(room, content);
  }

  /** A private message: stored in the recipient's inbox, shown to every device of theirs. */
  private async sendDirect(user: string, content: string): Promise<void> {
    const result = await this.client.publish(`@${user}`, content);
    this.print(`[dm → ${printable(user)}] ${printable(content)}${result.duplicate ? " (already sent)" : ""}`);
  }

  private async clearHistory(room: string): Promise<void> {
    await this.client.rpc.clearHistory({ room });
    this.print(`* ${room}: history cleared (new epoch)`);
  }

  private async join(room: string): Promise<void> {
    if (this.joined.has(room)) return this.switchRoom(room);
    // Validate here, not only at the broker: a join made while disconnected is only sent with the
    // next reconnect, and a bad room there would end the whole session.
    const badRoom = roomNameError(room);
    if (badRoom) throw new ConnectError(`room: ${badRoom}`, Code.InvalidArgument);
    const previous = this.current;
    let settle!: (error?: unknown) => void;
    const subscribed = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    // Registered before the call: the `subscribed` event and the first messages may beat its reply.
    this.joined.set(room, { announced: false, settle });
    this.current = room;
    try {
      await this.subscription.join(room);
    } catch (error) {
      this.joined.delete(room);
      if (this.current === room) this.current = previous;
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
  private joinDeferred(): void {
    for (const room of this.deferred) {
      this.subscription.join(room).catch((error: unknown) => {
        const joined = this.joined.get(room);
        if (!joined || joined.announced) return;
        this.joined.delete(room);
        if (this.current === room) this.current = [...this.joined.keys()].at(-1);
        joined.settle(error); // the waiting /join prints it
      });
    }
    this.deferred.clear();
  }

  private async leave(name: string | undefined): Promise<void> {
    const room = name ?? this.current;
    if (!room) return this.print("! usage: /leave <room> (no current room)");
    if (!this.joined.has(room)) return this.print(`! not in ${printable(room)}`);
    const wasCurrent = this.current === room;
    this.joined.delete(room);
    this.deferred.delete(room);
    if (wasCurrent) this.current = [...this.joined.keys()].at(-1);
    try {
      // The SDK forgets the room even if the call fails: nothing of it is shown any more.
      await this.subscription.leave(room);
    } finally {
      this.print(`* left ${room}`);
      if (wasCurrent) this.print(this.current ? `* current room: ${this.current}` : "* no current room");
    }
  }

  private async switchRoom(room: string): Promise<void> {
    if (!this.joined.has(room)) return this.print(`! not in ${printable(room)}: /join ${printable(room)} first`);
    this.current = room;
    this.print(`* current room: ${room}`);
  }

  private async listRooms(): Promise<void> {
    if (this.joined.size === 0) return this.print("* no rooms joined: /join <room>");
    const names = [...this.joined.keys()].map((room) => (room === this.current ? `${room} (current)` : room));
    this.print(`* rooms: ${names.join(", ")}`);
  }

  private async history(args: string[]): Promise<void> {
    if (args.length > 2) return this.print("! usage: /history [room] [N]");
    const room = args[0] ?? this.current;
    if (!room) return this.print("! usage: /history <room> [N] (no current room)");
    let limit = DEFAULT_HISTORY;
    if (args[1] !== undefined) {
      if (!/^[1-9]\d*$/.test(args[1])) return this.print(`! /history: N must be a positive number, not "${printable(args[1])}"`);
      limit = Number(args[1]);
    }
    const page = await this.client.history(room, { limit, direction: "backward" });
    if (page.messages.length === 0) return this.print(`* ${room}: no messages`);
    this.print(`* ${room}: last ${plural(page.messages.length, "message")}${page.hasMore ? " (older ones exist)" : ""}`);
    for (const message of page.messages) this.print(this.formatMessage(room, message));
  }

  private async who(name: string | undefined): Promise<void> {
    const room = name ?? this.current;
    if (!room) return this.print("! usage: /who <room> (no current room)");
    const { entries } = await this.client.presence(room);
    if (entries.length === 0) return this.print(`* ${room}: nobody`);
    const byUser = new Map<string, PresenceEntry[]>();
    for (const entry of entries) byUser.set(entry.user, [...(byUser.get(entry.user) ?? []), entry]);
    const users = [...byUser.keys()].sort().map((user) => {
      const sessions = byUser.get(user)!;
      const details = [
        sessions.length > 1 ? plural(sessions.length, "session") : sessions[0]!.device ? printable(sessions[0]!.device) : "",
        // A user is away only when every session of theirs is.
        sessions.every((e) => e.state === PresenceState.AWAY) ? "away" : "",
      ].filter((d) => d !== "");
      return details.length > 0 ? `${printable(user)} (${details.join(", ")})` : printable(user);
    });
    this.print(`* ${room}: ${users.join(", ")}`);
  }
}
