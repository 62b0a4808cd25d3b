import type { ConnectError } from "@connectrpc/connect";
import {
  createSeqcastClient,
  SubscriptionState,
  type SeqcastClient,
  type Subscription,
  type SubscriptionEvent,
} from "../client/index.js";
import { AWAY_AFTER_MS, BACKLOG, chatToken, COMMANDS, DEFAULT_HISTORY, HELP, inboxSubscriber, parseChatArgs, type ChatOptions } from "./chat-options.js";
import { errorLine, plural, printable, unreachableReason } from "./chat-format.js";
import { parseChatLine } from "./chat-commands.js";
import { describeUsers, PresenceNotices, RETURN_GRACE_MS } from "./chat-presence.js";
import { ChatRooms } from "./chat-rooms.js";
import { ChatScreen, type ChatIO } from "./chat-screen.js";

export type { ChatIO } from "./chat-screen.js";

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
  return new ChatApp(options, io, env).run();
}

/** How long a line may wait for the broker's acknowledgement before it is shown as pending. */
const PENDING_AFTER_MS = 1000;

class ChatApp {
  private readonly client: SeqcastClient;
  /** Rooms, presence and everything public: a plain session. */
  private readonly subscription: Subscription;
  /** Our inbox as a durable subscriber: private messages sent while we were away arrive when we are back. */
  private readonly inbox: Subscription;
  private readonly screen: ChatScreen;
  private readonly rooms: ChatRooms;
  private readonly notices: PresenceNotices;
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
    io: ChatIO,
    env: NodeJS.ProcessEnv,
  ) {
    this.screen = new ChatScreen(io, env);
    this.notices = new PresenceNotices(options.user);
    // Lines typed while the broker is away wait for it (shown as pending) instead of failing after a few tries.
    this.client = createSeqcastClient({
      baseUrl: options.url,
      token: options.token,
      protocol: options.protocol,
      maxPublishAttempts: Number.POSITIVE_INFINITY,
    });
    // No rooms yet: every room goes through ChatRooms.join(), which validates it first (see there).
    this.subscription = this.client.subscribe([], { device: options.device, awayAfterMs: AWAY_AFTER_MS, backlog: BACKLOG });
    this.rooms = new ChatRooms(this.subscription, this.notices, (line) => this.screen.print(line), this.stopped);
    this.subscription.on((event) => this.onEvent(event));
    // A first start (no cursor yet) shows the last few instead, like a room.
    this.inbox = this.client.subscribe([`@${options.user}`], { device: options.device, subscriber: inboxSubscriber(options.device), backlog: BACKLOG });
    this.inbox.on((event) => this.onInboxEvent(event));
  }

  async run(): Promise<number> {
    const rl = this.screen.open();
    this.screen.print(`* seqcast chat: ${this.options.user} at ${this.options.url} (/help for commands)`);
    if (this.options.room) {
      const room = this.options.room;
      this.enqueue(() => this.rooms.join(room));
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
      this.screen.print(`! ${plural(this.unacknowledged.size, "message")} not sent: the broker at ${this.options.url} did not acknowledge ${this.unacknowledged.size === 1 ? "it" : "them"}`);
    this.screen.close();
    // Ends the sessions: the broker sends our presence leaves to the others at once.
    await Promise.all([this.subscription.close(), this.inbox.close()]);
    return this.exitCode;
  }

  /** Runs `run` after `ms`, unless the chat stops first; the wait never keeps the process alive. */
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
        if (!this.rooms.has(event.room)) return;
        if (this.rooms.announce(event.room)) {
          // The first one: the room is live; say who is here. Later ones are resumes after a reconnect.
          this.screen.print(`* joined ${event.room}`);
          const here = this.notices.subscribed(event.room, event.present);
          if (here) this.screen.print(here);
          return;
        }
        this.notices.subscribed(event.room, event.present);
        this.later(RETURN_GRACE_MS, () => {
          for (const line of this.notices.expireReturning(event.room, this.subscription.presence(event.room))) this.screen.print(line);
        });
        return;
      }
      case "backlog":
        for (const message of event.messages) this.screen.message(event.room, message, this.rooms.current);
        return;
      case "message":
        this.screen.message(event.room, event.message, this.rooms.current, event.unmetDependencies);
        return;
      case "reset":
        this.screen.print(
          event.reason === "lost"
            ? `! ${event.room}: ${plural(event.skipped, "message")} lost (the broker no longer had ${event.skipped === 1n ? "it" : "them"})`
            : `! ${event.room}: history was cleared; earlier messages are gone`,
        );
        return;
      case "presence": {
        const line = this.notices.changed(event.room, event.kind, event.entry, this.subscription.presence(event.room));
        if (line) this.screen.print(line);
        return;
      }
      case "unsubscribed":
        return; // the answer to our own /leave, which printed already
      case "warning":
        this.screen.print(errorLine(event.error));
        return;
    }
  }

  private onState(to: SubscriptionState, reason: string, error?: ConnectError): void {
    const url = this.options.url;
    if (to === SubscriptionState.Connected) {
      this.everConnected = true;
      this.screen.print("* connected");
      this.rooms.joinDeferred();
    } else if (to === SubscriptionState.Reconnecting) {
      // Printed once per outage: the subscription stays "reconnecting" while it retries.
      const why = unreachableReason(error, reason);
      this.screen.print(
        this.everConnected
          ? `* lost the connection to ${url} (${why}); reconnecting, lines you type are sent once it is back`
          : `! cannot reach the broker at ${url} (${why}); retrying (is it running there? pass --url if not)`,
      );
    } else if (to === SubscriptionState.Closed && !this.stopping) {
      // A failure the SDK does not retry (e.g. the broker refused our identity).
      this.screen.print(error ? errorLine(error) : `! session closed: ${reason}`);
      this.stop(1);
    }
  }

  /** The inbox's own stream: private messages, and its failures (its state follows the main one's). */
  private onInboxEvent(event: SubscriptionEvent): void {
    if (event.type === "message") this.screen.message(event.room, event.message, this.rooms.current, event.unmetDependencies);
    else if (event.type === "backlog") for (const message of event.messages) this.screen.message(message.room, message, this.rooms.current);
    else if (event.type === "warning") this.screen.print(errorLine(event.error));
    else if (event.type === "state" && event.to === SubscriptionState.Closed && event.error && !this.stopping)
      this.screen.print(`! private messages: ${errorLine(event.error).slice(2)}`);
  }

  // ---- input ----------------------------------------------------------------

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue
      .then(() => (this.stopping ? undefined : task()))
      .catch((error: unknown) => this.screen.print(errorLine(error)))
      .then(() => {
        if (!this.stopping) this.screen.prompt();
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
        return this.rooms.join(command.room);
      case "leave":
        return this.rooms.leave(command.room);
      case "room":
        return this.rooms.switchTo(command.room);
      case "rooms":
        return this.rooms.list();
      case "history":
        return this.history(command.args);
      case "who":
        return this.who(command.room);
      case "away":
        await this.subscription.setPresence("away");
        return this.screen.print("* you are away");
      case "back":
        await this.subscription.setPresence("online");
        return this.screen.print("* you are back");
      case "clear_history":
        return this.clearHistory(command.room);
      case "help":
        for (const text of COMMANDS.split("\n")) this.screen.print(text);
        return;
      case "quit":
        return this.stop(0);
      case "usage":
        return this.screen.print(command.message);
    }
  }

  private async send(content: string): Promise<void> {
    const room = this.rooms.current;
    if (!room) return this.screen.print("! join a room first: /join <room>");
    // Nothing printed on success: our message shows when it comes back on the stream, in order.
    await this.track(this.client.publish(room, content), `~ pending: ${printable(content)} (not acknowledged by the broker yet)`);
  }

  /**
   * A message that answers message `sequence` of the current room: the SDK
   * adds it as a causal dependency, so everyone sees the question before the
   * answer, and the line shows `(re #N)`.
   */
  private async reply(sequence: bigint, content: string): Promise<void> {
    const room = this.rooms.current;
    if (!room) return this.screen.print("! join a room first: /join <room>");
    const position = this.subscription.positions().get(room);
    if (!position || position.epoch === "" || sequence < 1n || sequence > position.sequence)
      return this.screen.print(`! /reply: ${room} has no message #${sequence} yet (nothing was sent)`);
    const replyTo = { room, epoch: position.epoch, sequence };
    await this.track(this.client.publish(room, content, { replyTo }), `~ pending: ${printable(content)} (not acknowledged by the broker yet)`);
  }

  /** A private message: stored in the recipient's inbox, shown to every device of theirs. */
  private async sendDirect(user: string, content: string): Promise<void> {
    const line = `[dm → ${printable(user)}] ${printable(content)}`;
    await this.track(
      this.client.publish(`@${user}`, content).then((result) => this.screen.print(`${this.screen.paint.magenta(line)}${result.duplicate ? " (already sent)" : ""}`)),
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
      (error: unknown) => this.screen.print(`! not sent: ${errorLine(error).slice(2)}`),
    );
    this.unacknowledged.add(publish);
    void settled.finally(() => this.unacknowledged.delete(publish));
    if (this.subscription.state !== SubscriptionState.Connected) {
      this.screen.print(pendingLine);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<"slow">((resolve) => (timer = setTimeout(() => resolve("slow"), PENDING_AFTER_MS)));
    const outcome = await Promise.race([settled, slow]);
    clearTimeout(timer);
    if (outcome === "slow") this.screen.print(pendingLine);
  }

  private async clearHistory(room: string): Promise<void> {
    await this.client.rpc.clearHistory({ room });
    this.screen.print(`* ${room}: history cleared`);
  }

  private async history(args: string[]): Promise<void> {
    if (args.length > 2) return this.screen.print("! usage: /history [room] [N]");
    const room = args[0] ?? this.rooms.current;
    if (!room) return this.screen.print("! usage: /history <room> [N] (no current room)");
    let limit = DEFAULT_HISTORY;
    if (args[1] !== undefined) {
      if (!/^[1-9]\d*$/.test(args[1])) return this.screen.print(`! /history: N must be a positive number, not "${printable(args[1])}"`);
      limit = Number(args[1]);
    }
    const page = await this.client.history(room, { limit, direction: "backward" });
    if (page.messages.length === 0) return this.screen.print(`* ${room}: no messages`);
    this.screen.print(`* ${room}: last ${plural(page.messages.length, "message")}${page.hasMore ? " (older ones exist)" : ""}`);
    for (const message of page.messages) this.screen.message(room, message, this.rooms.current);
  }

  private async who(name: string | undefined): Promise<void> {
    const room = name ?? this.rooms.current;
    if (!room) return this.screen.print("! usage: /who <room> (no current room)");
    // A joined room: what our stream says (the same list everyone's stream converges on); another: ask.
    const entries = this.rooms.isLive(room) ? this.subscription.presence(room) : (await this.client.presence(room)).entries;
    if (entries.length === 0) return this.screen.print(`* ${room}: nobody`);
    this.screen.print(`* ${room}: ${describeUsers(entries)}`);
  }
}
