import { Redis, type RedisOptions } from "ioredis";
import type { EngineStatus } from "./engine.js";

/**
 * The Redis engine's two connections (commands, and pub/sub, which Redis
 * dedicates to subscriptions) and whether Redis is reachable through them.
 *
 * Failure policy: a call never waits long for Redis. While a connection is
 * down, commands fail at once (no offline queue) after a short wait for a
 * reconnect in progress; a command in flight when the connection drops fails
 * instead of being sent again (the SDK retries a publish with its client
 * message id, so it is stored once); a command Redis does not answer within
 * the timeout (Redis paused, network black hole) fails too. ioredis keeps
 * reconnecting in the background; the engine resubscribes and catches up.
 */
export interface RedisLinkOptions {
  url: string;
  /** A command not answered within this fails (ms). */
  commandTimeoutMs: number;
  /** How long a call waits for a connection being (re)established before failing (ms). */
  connectWaitMs: number;
  /** How often Redis is PINGed to notice a Redis that stopped answering (ms). */
  pingIntervalMs: number;
  onStatus: (status: EngineStatus, reason: string) => void;
  /** The pub/sub connection is (again) ready: subscriptions must be made anew. */
  onSubscriberReady: () => void;
}

export class RedisLink {
  readonly commands: Redis;
  readonly subscriber: Redis;
  private statusValue: EngineStatus = "unavailable";
  private reasonValue: string;
  private pingOk = false;
  private lastError = "";
  private readonly pinger: NodeJS.Timeout;
  private closed = false;
  /** The current outage's error was reported (once per outage). */
  private reportedError = false;
  private readonly nextReady = new Map<Redis, Promise<void>>();
  /** Commands made through command() and not answered yet; close() waits for them. */
  private pending = 0;
  private whenIdle: (() => void) | undefined;

  constructor(private readonly options: RedisLinkOptions) {
    this.reasonValue = `connecting to redis at ${redactUrl(options.url)}`;
    const common: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: Math.max(1000, options.commandTimeoutMs),
      // Reconnect quickly at first, then every second: an outage ends when Redis is back, not after a long backoff.
      retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 5), 1000),
    };
    // Publishes issued in one tick share one write and one round trip.
    this.commands = new Redis(options.url, { ...common, enableAutoPipelining: true, connectionName: "seqcast" });
    // The engine resubscribes itself after a reconnect, so it knows when to catch up.
    this.subscriber = new Redis(options.url, { ...common, autoResubscribe: false, connectionName: "seqcast-sub" });
    for (const client of [this.commands, this.subscriber]) {
      client.on("error", (error: Error) => {
        this.lastError = error.message;
        // Unreachable from the start (or again): say so once, not on every retry.
        if (this.statusValue !== "ok" && !this.reportedError) {
          this.reportedError = true;
          this.reasonValue = this.unreachable();
          this.options.onStatus(this.statusValue, this.reasonValue);
        }
      });
      client.on("close", () => this.update());
      client.on("ready", () => {
        if (client === this.commands) void this.ping();
        this.update();
      });
    }
    this.subscriber.on("ready", () => options.onSubscriberReady());
    this.pinger = setInterval(() => void this.ping(), options.pingIntervalMs);
    this.pinger.unref();
  }

  get status(): { status: EngineStatus; reason: string } {
    return { status: this.statusValue, reason: this.reasonValue };
  }

  /** Resolves once `client` is ready, waiting briefly for a reconnect in progress; else throws "unreachable". */
  async ready(client: Redis): Promise<void> {
    if (this.closed) throw new Error("redis engine is closed");
    if (client.status === "ready") return;
    // One listener per connection however many calls wait.
    let next = this.nextReady.get(client);
    if (!next) {
      next = new Promise<void>((resolve) => client.once("ready", () => resolve()));
      this.nextReady.set(client, next);
      void next.then(() => this.nextReady.delete(client));
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(this.unreachable())), this.options.connectWaitMs);
    });
    try {
      await Promise.race([next, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  unreachable(): string {
    return `redis at ${redactUrl(this.options.url)} is unreachable${this.lastError ? ` (${this.lastError})` : ""}; retrying`;
  }

  private async ping(): Promise<void> {
    if (this.closed || this.commands.status !== "ready") return;
    try {
      await this.commands.ping();
      this.pingOk = true;
    } catch (error) {
      this.pingOk = false;
      this.lastError = (error as Error).message;
    }
    this.update();
  }

  private update(): void {
    if (this.closed) return;
    const up = this.commands.status === "ready" && this.subscriber.status === "ready";
    const status: EngineStatus = up && this.pingOk ? "ok" : "unavailable";
    const reason = status === "ok" ? `connected to redis at ${redactUrl(this.options.url)}` : up ? `redis at ${redactUrl(this.options.url)} does not answer${this.lastError ? ` (${this.lastError})` : ""}` : this.unreachable();
    if (status === this.statusValue) return;
    this.reportedError = status === "unavailable";
    this.statusValue = status;
    this.reasonValue = reason;
    this.options.onStatus(status, reason);
  }

  /** Sends a command once the command connection is ready; close() waits for its reply (or error). */
  async command<T>(send: (redis: Redis) => Promise<T>): Promise<T> {
    this.pending++;
    try {
      await this.ready(this.commands);
      return await send(this.commands);
    } finally {
      if (--this.pending === 0) this.whenIdle?.();
    }
  }

  /**
   * Waits for the replies of the commands already made through command(),
   * then closes both connections. A command made just before may not have
   * reached ioredis yet (it waits a microtask in ready()) or may sit in its
   * auto-pipeline, while QUIT is written at once: without the wait those
   * publishes failed with "Connection is closed" (test/engine/redis-close.test.ts).
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pinger);
    if (this.pending > 0) await new Promise<void>((resolve) => (this.whenIdle = resolve));
    await Promise.all(
      [this.commands, this.subscriber].map(async (client) => {
        try {
          if (client.status === "ready") await client.quit();
        } catch {
          // Already gone: nothing to wait for.
        }
        client.disconnect();
      }),
    );
  }
}

/** The URL without its password, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return url;
  }
}
