/**
 * Redis pub/sub through ioredis: each subscriber on its own SUBSCRIBE
 * connection; the publisher's acknowledgement is PUBLISH's reply (the number
 * of receivers), sent in pipelines.
 */
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { P } from "../lib/params.js";
import { findPid, reachable } from "../lib/proc.js";
import { describe, Problems } from "../lib/util.js";
import { publishWindowed } from "../lib/window.js";
import type { DeliverySink, FanoutDriver } from "./driver.js";
import { flushGroup } from "./nats.js";

const CHANNEL = "bench.fanout";

function redisConnection(name: string): Redis {
  return new Redis({
    host: "127.0.0.1",
    port: P.redisPort,
    lazyConnect: true,
    connectionName: name,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: true,
    connectTimeout: 3000,
  });
}

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

export class RedisFanout implements FanoutDriver {
  readonly name = "Redis";
  readonly sequenced = false;
  readonly publishErrors = new Problems();
  readonly subscriberErrors = new Problems();
  readonly publishMode: string;
  private readonly subs: Redis[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  private closing = false;

  private constructor(
    private readonly publisher: Redis,
    readonly serverPid: number | undefined,
    readonly version: string,
  ) {
    this.publishMode = `pipelines of ${flushGroup(P.window)} PUBLISH, at most ${P.window} unanswered`;
  }

  static async open(): Promise<RedisFanout> {
    if (!(await reachable(P.redisPort))) throw new Error(`nothing listens on 127.0.0.1:${P.redisPort}`);
    const publisher = redisConnection("bench-pub");
    publisher.on("error", () => {});
    try {
      await publisher.connect();
      const info = await publisher.info("server");
      const version = /redis_version:(\S+)/.exec(info)?.[1] ?? "?";
      const pid = Number(/process_id:(\d+)/.exec(info)?.[1]) || findPid("redis-server", P.redisPort);
      return new RedisFanout(publisher, pid, `redis-server ${version}`);
    } catch (error) {
      publisher.disconnect();
      throw error;
    }
  }

  async connectSubscribers(n: number, sink: DeliverySink): Promise<void> {
    for (let sub = 0; sub < n; sub++) {
      const redis = redisConnection(`bench-sub-${sub}`);
      this.subs.push(redis);
      redis.on("error", (error: unknown) => {
        if (!this.closing) this.subscriberErrors.add(`subscriber ${sub}: ${describe(error)}`);
      });
      redis.on("close", () => {
        if (!this.closing) sink.fail(sub, "connection closed");
      });
      redis.on("messageBuffer", (_channel: Buffer, message: Buffer) => sink.deliver(sub, message, performance.now()));
      await redis.connect();
    }
    // The SUBSCRIBE reply means the server has registered the subscription.
    await Promise.all(this.subs.map((redis) => redis.subscribe(CHANNEL)));
  }

  async publishWindowed(count: number, make: (k: number) => Uint8Array, window: number): Promise<void> {
    try {
      await publishWindowed(count, flushGroup(window), window, async (first, n) => {
        const pipeline = this.publisher.pipeline();
        for (let k = first; k < first + n; k++) pipeline.publish(CHANNEL, asBuffer(make(k)));
        for (const [error] of (await pipeline.exec()) ?? []) if (error) this.publishErrors.add(`publish: ${describe(error)}`);
      });
    } catch (error) {
      this.publishErrors.add(`publish: ${describe(error)}`);
    }
  }

  publishOne(payload: Uint8Array): void {
    const p = this.publisher.publish(CHANNEL, asBuffer(payload)).catch((error: unknown) => this.publishErrors.add(`publish: ${describe(error)}`));
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  async settle(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const redis of [this.publisher, ...this.subs]) redis.disconnect();
  }
}
