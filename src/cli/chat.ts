import readline from "node:readline";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Message } from "../../gen/es/seqcast/v1/types_pb.js";
import { isInbox, roomNameError } from "../names/rooms.js";
import {
  createSeqcastClient,
  SubscriptionState,
  type SeqcastClient,
  type Subscription,
  type SubscriptionEvent,
} from "../client/index.js";
import { AWAY_AFTER_MS, BACKLOG, chatToken, COMMANDS, DEFAULT_HISTORY, HELP, inboxSubscriber, parseChatArgs, type ChatOptions } from "./chat-options.js";
import { errorLine, messageLine, Paint, plural, printable, unreachableReason } from "./chat-format.js";
import { parseChatLine } from "./chat-commands.js";
import { describeUsers, PresenceNotices, RETURN_GRACE_MS } from "./chat-presence.js";

/** Where the chat reads lines and prints events: the terminal, or a test's streams. */
export interface ChatIO {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean };
}

/** `seqcast chat`: resolves with the exit code (0 after /quit or end of input, 1 if the session failed for good). */
export async function chat(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  io: ChatIO = { input: process.stdin, output: process.stdout },
): Promise<number> {
  const options = parseChatArgs(argv, env);
  if (!options) {
    io.output.write(`${HELP}\n`);
    return 0;
  }
  options.token = await chatToken(options, env);
  return new ChatApp(options, io.input, io.output, env).run();
}

/** A room this chat has joined. */
interface JoinedRoom {
  /** Its first `subscribed` event was printed (later ones are resumes after reconnects). */
  announced: boolean;
  /** Settles with that first `subscribed` event, or when the join fails. */
  settle: (error?: unknown) => void;
}

/** How long a line may wait for the broker's acknowledgement before it is shown as pending. */
const PENDING_AFTER_MS = 1000;

class ChatApp {
  private readonly client: SeqcastClient;
  /** Rooms, presence and everything public: a plain session. */
  private readonly subscription: Subscription;
  /** Our inbox as a durable subscriber: private messages sent while we were away arrive when we are back. */
  private readonly inbox: Subscription;
  private readonly interactive: boolean;
  private readonly paint: Paint;
  private rl: readline.Interface | undefined;
  /** Joined rooms in join order; the current room is one of them. */
  private readonly joined = new Map<string, JoinedRoom>();
  private current: string | undefined;
  private readonly notices: PresenceNotices;
  /** Rooms joined while no session was live (see joinDeferred). */
  private readonly deferred = new Set<string>();
  /** Publishes the broker has not acknowledged yet. */
  private readonly unacknowledged = new Set<Promise<unknown>>();
  /** The session was live at least once: a failure after that is a lost connection, not an unreachable broker. */
  private everConnected = false;
  private readonly timers = new Set<NodeJS.Timeout>();
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
    env: NodeJS.ProcessEnv,
  ) {
    this.interactive = Boolean(input.isTTY && output.isTTY);
    this.paint = Paint.for(output, env);
    this.notices = new PresenceNotices(options.user);
    // Lines typed while the broker is away wait for it (shown as pending) instead of failing after a few tries.
    this.client = createSeqcastClient({
      baseUrl: options.url,
      token: options.token,
      protocol: options.protocol,
      maxPublishAttempts: Number.POSITIVE_INFINITY,
    });
    // No rooms yet: every room goes through join(), which validates it first (see there).
    this.subscription = this.client.subscribe([], { device: options.device, awayAfterMs: AWAY_AFTER_MS, backlog: BACKLOG });
    this.subscription.on((event) => this.onEvent(event));
    // A first start (no cursor yet) shows the last few instead, like a room.
    this.inbox = this.client.subscribe([`@${options.user}`], { device: options.device, subscriber: inboxSubscriber(options.device), backlog: BACKLOG });
    this.inbox.on((event) => this.onInboxEvent(event));
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
    for (const timer of this.timers) clearTimeout(timer);
    if (this.unacknowledged.size > 0)
      this.print(`! ${plural(this.unacknowledged.size, "message")} not sent: the broker at ${this.options.url} did not acknowledge ${this.unacknowledged.size === 1 ? "it" : "them"}`);
    this.rl = undefined;
    rl.close();
    // Ends the sessions: the broker sends our presence leaves to the others at once.
    await Promise.all([this.subscription.close(), this.inbox.close()]);
    return this.exitCode;
  }

  // ---- output -------------------------------------------------------------

  private print(line: string): void {
    const text = this.paint.line(line);
    if (this.interactive && this.rl) {
      // Keep what the user is typing: clear the prompt line, print, redraw it below.
      readline.cursorTo(this.output, 0);
      readline.clearLine(this.output, 0);
      this.output.write(`${text}\n`);
      this.rl.prompt(true);
    } else {
      this.output.write(`${text}\n`);
    }
  }

  private formatMessage(room: string, message: Message, late?: ReadonlyArray<{ room: string; sequence: bigint }>): string {
    return messageLine(message, isInbox(room) ? "dm" : room === this.current ? "current" : "other", this.paint, undefined, late);
  }

  private later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  // ---- subscription events -----------------------------------------------

  private onEvent(event: SubscriptionEvent): void {
    switch (event.type) {
      case "state":
        return this.onState(event.to, event.reason, event.error);
      case "subscribed": {
        const joined = this.joined.get(event.room);
        if (!joined) return;
        if (!joined.announced) {
          // The first one: the room is live; say who is here. Later ones are resumes after a reconnect.
          joined.announced = true;
          joined.settle();
          this.print(`* joined ${event.room}`);
          const here = this.notices.subscribed(event.room, event.present);
          if (here) this.print(here);
          return;
        }
        this.notices.subscribed(event.room, event.present);
        this.later(RETURN_GRACE_MS, () => {
          for (const line of this.notices.expireReturning(event.room, this.subscription.presence(event.room))) this.print(line);
        });
        return;
      }
      case "backlog":
        for (const message of event.messages) this.print(this.formatMessage(event.room, message));
        return;
      case "message":
        this.print(this.formatMessage(event.room, event.message, event.unmetDependencies));
        return;
      case "reset":
        this.print(
          event.reason === "lost"
            ? `! ${event.room}: ${plural(event.skipped, "message")} lost (the broker no longer had ${event.skipped === 1n ? "it" : "them"})`
            : `! ${event.room}: history was cleared; earlier messages are gone`,
        );
        return;
      case "presence": {
        const line = this.notices.changed(event.room, event.kind, event.entry, this.subscription.presence(event.room));
        if (line) this.print(line);
        return;
      }
      case "unsubscribed":
        return; // the answer to our own /leave, which printed already
      case "warning":
        this.print(errorLine(event.error));
        return;
    }
  }

  private onState(to: SubscriptionState, reason: string, error?: ConnectError): void {
    const url = this.options.url;
    if (to === SubscriptionState.Connected) {
      this.everConnected = true;
      this.print("* connected");
      this.joinDeferred();
    } else if (to === SubscriptionState.Reconnecting) {
      // Printed once per outage: the subscription stays "reconnecting" while it retries.
      const why = unreachableReason(error, reason);
      this.print(
        this.everConnected
          ? `* lost the connection to ${url} (${why}); reconnecting, lines you type are sent once it is back`
          : `! cannot reach the broker at ${url} (${why}); retrying (is it running there? pass --url if not)`,
      );
    } else if (to === SubscriptionState.Closed && !this.stopping) {
      // A failure the SDK does not retry (e.g. the broker refused our identity).
      this.print(error ? errorLine(error) : `! session closed: ${reason}`);
      this.stop(1);
    }
  }

  /** The inbox's own stream: private messages, and its failures (its state follows the main one's). */
  private onInboxEvent(event: SubscriptionEvent): void {
    if (event.type === "message") this.print(this.formatMessage(event.room, event.message, event.unmetDependencies));
    else if (event.type === "backlog") for (const message of event.messages) this.print(this.formatMessage(message.room, message));
    else if (event.type === "warning") this.print(errorLine(event.error));
    else if (event.type === "state" && event.to === SubscriptionState.Closed && event.error && !this.stopping)
      this.print(`! private messages: ${errorLine(event.error).slice(2)}`);
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
    const command = parseChatLine(raw);
    if (command.kind === "none") return;
    // Saying you are away or back is not activity that should decide it for you.
    if (command.kind !== "away" && command.kind !== "back") this.subscription.markActive();
    switch (command.kind) {
      case "say":
        return this.send(command.text);
      case "direct":
        return this.sendDirect(command.user, command.text);
      case "reply":
        return this.reply(command.sequence, command.text);
      case "join":
        return this.join(command.room);
      case "leave":
        return this.leave(command.room);
      case "room":
        return this.switchRoom(command.room);
      case "rooms":
        return this.listRooms();
      case "history":
        return this.history(command.args);
      case "who":
        return this.who(command.room);
      case "away":
        await this.subscription.setPresence("away");
        return this.print("* you are away");
      case "back":
        await this.subscription.setPresence("online");
        return this.print("* you are back");
      case "clear_history":
        return this.clearHistory(command.room);
      case "help":
        for (const text of COMMANDS.split("\n")) this.print(text);
        return;
      case "quit":
        return this.stop(0);
      case "usage":
        return this.print(command.message);
    }
  }

  private async send(content: string): Promise<void> {
    const room = this.current;
    if (!room) return this.print("! join a room first: /join <room>");
    // Nothing printed on success: our message shows when it comes back on the stream, in order.
    await this.track(this.client.publish(room, content), `~ pending: ${printable(content)} (not acknowledged by the broker yet)`);
  }

  /**
   * A message that answers message `sequence` of the current room: the SDK
   * adds it as a causal dependency, so everyone sees the question before the
   * answer, and the line shows `(re #N)`.
   */
  private async reply(sequence: bigint, content: string): Promise<void> {
    const room = this.current;
    if (!room) return this.print("! join a room first: /join <room>");
    const position = this.subscription.positions().get(room);
    if (!position || position.epoch === "" || sequence < 1n || sequence > position.sequence)
      return this.print(`! /reply: ${room} has no message #${sequence} yet (nothing was sent)`);
    const replyTo = { room, epoch: position.epoch, sequence };
    await this.track(this.client.publish(room, content, { replyTo }), `~ pending: ${printable(content)} (not acknowledged by the broker yet)`);
  }

  /** A private message: stored in the recipient's inbox, shown to every device of theirs. */
  private async sendDirect(user: string, content: string): Promise<void> {
    const line = `[dm → ${printable(user)}] ${printable(content)}`;
    await this.track(
      this.client.publish(`@${user}`, content).then((result) => this.print(`${this.paint.magenta(line)}${result.duplicate ? " (already sent)" : ""}`)),
      `~ pending: ${line}`,
    );
  }

  /**
   * Waits for a publish while the broker answers, so piped input stays in
   * order; when it does not (disconnected, or slow), marks the line pending
   * and lets the next lines through. The SDK keeps retrying it in order; a
   * failure is printed whenever it comes.
   */
  private async track(publish: Promise<unknown>, pendingLine: string): Promise<void> {
    const settled = publish.then(
      () => {},
      (error: unknown) => this.print(`! not sent: ${errorLine(error).slice(2)}`),
    );
    this.unacknowledged.add(publish);
    void settled.finally(() => this.unacknowledged.delete(publish));
    if (this.subscription.state !== SubscriptionState.Connected) {
      this.print(pendingLine);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<"slow">((resolve) => (timer = setTimeout(() => resolve("slow"), PENDING_AFTER_MS)));
    const outcome = await Promise.race([settled, slow]);
    clearTimeout(timer);
    if (outcome === "slow") this.print(pendingLine);
  }

  private async clearHistory(room: string): Promise<void> {
    await this.client.rpc.clearHistory({ room });
    this.print(`* ${room}: history cleared`);
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
    this.notices.forget(room);
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
    // A joined room: what our stream says (the same list everyone's stream converges on); another: ask.
    const entries = this.joined.get(room)?.announced ? this.subscription.presence(room) : (await this.client.presence(room)).entries;
    if (entries.length === 0) return this.print(`* ${room}: nobody`);
    this.print(`* ${room}: ${describeUsers(entries)}`);
  }
}
