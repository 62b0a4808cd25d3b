/**
 * NATS core through nats.js: each subscriber on its own connection; the
 * publisher's "acknowledgement" is a flush (PING/PONG): when it returns, the
 * server has processed every message published before it (at-most-once: a
 * flush does not mean delivered).
 */
import { performance } from "node:perf_hooks";
import { connect as natsConnect, type NatsConnection } from "nats";
import { findPid, reachable } from "../lib/proc.js";
import { natsPort, P } from "../lib/params.js";
import { describe, Problems, sleep } from "../lib/util.js";
import { publishWindowed } from "../lib/window.js";
import type { AckedPublisher, DeliverySink, FanoutDriver } from "./driver.js";

export const FANOUT_SUBJECT = "bench.fanout";

export async function natsConnection(name: string): Promise<NatsConnection> {
  return natsConnect({ servers: P.natsUrl, reconnect: false, timeout: 5000, name });
}

/** Opens a connection to the NATS server, or says why not. */
export async function openNats(name: string): Promise<NatsConnection> {
  if (!(await reachable(natsPort()))) throw new Error(`nothing listens on ${P.natsUrl}`);
  return natsConnection(name);
}

export const natsServerPid = () => findPid("nats-server", natsPort());

/**
 * `n` subscribers on `subject(sub)`, each on its own connection (or
 * `perConnection` subscriptions per connection); resolves once the server
 * processed every SUB (a flush on each connection).
 */
export async function natsSubscribers(
  n: number,
  perConnection: number,
  subject: (sub: number) => string,
  sink: DeliverySink,
  isClosing: () => boolean,
): Promise<NatsConnection[]> {
  const connections: NatsConnection[] = [];
  for (let sub = 0; sub < n; sub++) {
    if (sub % perConnection === 0) {
      const nc = await natsConnection(`bench-sub-${sub}`);
      connections.push(nc);
      const first = sub;
      void nc.closed().then((error) => {
        if (isClosing()) return;
        for (let s = first; s < Math.min(n, first + perConnection); s++) sink.fail(s, `connection closed${error ? `: ${describe(error)}` : ""}`);
      });
    }
    const nc = connections[connections.length - 1]!;
    nc.subscribe(subject(sub), {
      callback: (error, msg) => {
        if (error) sink.fail(sub, describe(error));
        else sink.deliver(sub, msg.data, performance.now());
      },
    });
  }
  await Promise.all(connections.map((nc) => nc.flush()));
  return connections;
}

export async function closeAll(connections: NatsConnection[]): Promise<void> {
  await Promise.race([Promise.allSettled(connections.map((nc) => nc.close())), sleep(5000)]);
}

/**
 * Publishes with at most `window` messages unflushed, a flush after every
 * `group` messages: NATS core's nearest thing to an acknowledged publish.
 */
export function natsPublisher(nc: NatsConnection, subject: (k: number) => string, window: number, group: number): AckedPublisher {
  return {
    description: `publish, flush (PING/PONG) after every ${group} messages, at most ${window} unflushed`,
    run: (count, make, onAck) =>
      publishWindowed(count, group, window, async (first, n) => {
        for (let k = first; k < first + n; k++) nc.publish(subject(k), make(k));
        await nc.flush();
        for (let k = first; k < first + n; k++) onAck(k, 0);
      }),
    close: async () => {},
  };
}

export class NatsFanout implements FanoutDriver {
  readonly name = "NATS";
  readonly sequenced = false;
  readonly publishErrors = new Problems();
  readonly subscriberErrors = new Problems();
  readonly publishMode: string;
  private subs: NatsConnection[] = [];
  private closing = false;

  private constructor(
    private readonly publisher: NatsConnection,
    readonly serverPid: number | undefined,
    readonly version: string,
  ) {
    this.publishMode = `publish, a flush (PING/PONG) after every ${flushGroup(P.window)} messages, at most ${P.window} unflushed`;
  }

  static async open(): Promise<NatsFanout> {
    const publisher = await openNats("bench-pub");
    return new NatsFanout(publisher, natsServerPid(), `nats-server ${publisher.info?.version ?? "?"}`);
  }

  async connectSubscribers(n: number, sink: DeliverySink): Promise<void> {
    const wrapped: DeliverySink = {
      ...sink,
      fail: (sub, reason) => {
        this.subscriberErrors.add(`subscriber ${sub}: ${reason}`);
        sink.fail(sub, reason);
      },
    };
    this.subs = await natsSubscribers(n, 1, () => FANOUT_SUBJECT, wrapped, () => this.closing);
  }

  async publishWindowed(count: number, make: (k: number) => Uint8Array, window: number): Promise<void> {
    try {
      await natsPublisher(this.publisher, () => FANOUT_SUBJECT, window, flushGroup(window)).run(count, make, () => {});
    } catch (error) {
      this.publishErrors.add(`publish: ${describe(error)}`);
    }
  }

  publishOne(payload: Uint8Array): void {
    try {
      this.publisher.publish(FANOUT_SUBJECT, payload);
    } catch (error) {
      this.publishErrors.add(`publish: ${describe(error)}`);
    }
  }

  async settle(): Promise<void> {
    await this.publisher.flush().catch((error: unknown) => this.publishErrors.add(`flush: ${describe(error)}`));
  }

  async close(): Promise<void> {
    this.closing = true;
    await closeAll([this.publisher, ...this.subs]);
  }
}

/** Acknowledgement groups of a fan-out window: a flush (NATS) or a pipeline (Redis) per quarter window, so the window slides. */
export const flushGroup = (window: number) => Math.max(1, Math.floor(window / 4));
