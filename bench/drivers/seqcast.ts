/**
 * seqcast through bench/lean-client.ts: gRPC on its own HTTP/2 connections, reading of each
 * delivery only its sequence and payload (what nats.js and ioredis hand
 * over), publishing through PublishStream (or unary Publish).
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { BrokerChild, EventLoopTimes } from "../lib/broker-process.js";
import { benchToken } from "../lib/params.js";
import { Problems } from "../lib/util.js";
import { publishWindowed } from "../lib/window.js";
import { connect, LeanPublishStream, publishUnary, subscribe, type LeanConnection, type PublishAck } from "../lean-client.js";
import type { BenchCausalContext } from "../lib/causal.js";
import type { AckedPublisher, DeliverySink, FanoutDriver } from "./driver.js";

export const TOKEN = benchToken("bench");

type Ack = (ack: PublishAck) => void;

/**
 * One publisher connection. "stream": one PublishStream; messages go out in
 * requests of one or more messages, results come back in order, so the
 * k-th result acknowledges the k-th message sent. "unary": one Publish call
 * per message, as many in flight as the caller allows, on one HTTP/2
 * connection.
 */
class SeqcastSender {
  private readonly connection: LeanConnection;
  private readonly stream: LeanPublishStream | undefined;
  /** Stream groups sent and not yet fully acknowledged, oldest first. */
  private readonly owed: Array<{ acked: number; n: number; onAck: Ack; resolve: () => void }> = [];

  constructor(
    url: string,
    readonly mode: "stream" | "unary",
    /** The causal context whose dependencies go with every publish (bench/lib/causal.ts), or none. */
    private readonly causal?: BenchCausalContext,
  ) {
    this.connection = connect(url);
    if (mode === "unary") return;
    this.stream = new LeanPublishStream(this.connection, TOKEN, (ack) => {
      const group = this.owed[0];
      if (!group) return;
      group.onAck(ack);
      if (++group.acked === group.n) {
        this.owed.shift();
        group.resolve();
      }
    });
  }

  /** Publishes `messages` (one request on the stream); resolves when all are acknowledged. */
  send(messages: Array<{ room: string; payload: Uint8Array }>, onAck: Ack): Promise<void> {
    const stream = this.stream;
    if (!stream)
      return Promise.all(
        messages.map(async (m) => onAck(await publishUnary(this.connection, TOKEN, m.room, m.payload, randomUUID(), this.causal?.next()))),
      ).then(() => undefined);
    return new Promise((resolve) => {
      this.owed.push({ acked: 0, n: messages.length, onAck, resolve });
      // A literal, not `{ ...m, clientMessageId }`: V8 (Node 20) takes a slow path for a spread
      // followed by more properties, ~0.7 µs per message, a quarter of this process's CPU in ingest.
      const causal = this.causal;
      stream.publish(messages.map((m) => ({ room: m.room, payload: m.payload, clientMessageId: randomUUID(), dependencies: causal?.next() })));
    });
  }

  async close(): Promise<void> {
    try {
      const status = this.stream && (await Promise.race([this.stream.end(), new Promise<undefined>((resolve) => setTimeout(resolve, 5000))]));
      if (status && status.code !== 0) throw new Error(`PublishStream ended with code ${status.code}: ${status.message}`);
    } finally {
      this.connection.close();
    }
  }
}

const ackError = (ack: PublishAck) => (ack.code === 0 ? undefined : `code ${ack.code} ${ack.error ?? ""}`);

export interface SeqcastPublisherOptions {
  /** "stream": PublishStream with `window` unacknowledged in requests of `batch`; "unary": `window` concurrent Publish calls on one connection. */
  mode: "stream" | "unary";
  window: number;
  batch?: number;
  room: (k: number) => string;
}

export function seqcastPublisher(broker: BrokerChild, options: SeqcastPublisherOptions): AckedPublisher {
  const batch = options.mode === "stream" ? (options.batch ?? 1) : 1;
  const sender = new SeqcastSender(broker.url, options.mode);
  return {
    description:
      options.mode === "unary"
        ? `unary Publish, ${options.window} calls in flight on one HTTP/2 connection`
        : `PublishStream, ${options.window} messages unacknowledged, ${batch === 1 ? "one message" : `up to ${batch} messages`} per request`,
    run: (count, make, onAck) =>
      publishWindowed(count, batch, options.window, (first, n) => {
        const messages: Array<{ room: string; payload: Uint8Array }> = [];
        for (let i = 0; i < n; i++) messages.push({ room: options.room(first + i), payload: make(first + i) });
        let k = first;
        return sender.send(messages, (ack) => onAck(k++, ack.sequence, ackError(ack)));
      }),
    close: () => sender.close(),
  };
}

export interface SubscriberSet {
  streams: Array<{ close(): void }>;
  connections: LeanConnection[];
  close(): void;
}

/**
 * `n` Subscribe streams to `room(i)`, `perConnection` streams on each HTTP/2
 * connection; resolves when every stream got its `subscribed` event.
 */
export async function openSubscribers(
  broker: BrokerChild,
  n: number,
  perConnection: number,
  room: (i: number) => string,
  sink: DeliverySink,
  other?: (sub: number, kind: number) => void,
): Promise<SubscriberSet> {
  const set: SubscriberSet = {
    streams: [],
    connections: [],
    close() {
      closing = true;
      for (const stream of set.streams) stream.close();
      for (const connection of set.connections) connection.close();
    },
  };
  let closing = false;
  const subscribed: Promise<void>[] = [];
  for (let sub = 0; sub < n; sub++) {
    if (sub % perConnection === 0) set.connections.push(connect(broker.url));
    const connection = set.connections[set.connections.length - 1]!;
    subscribed.push(
      new Promise<void>((resolve, reject) => {
        const stream = subscribe(connection, TOKEN, [{ room: room(sub) }], {
          subscribed: (_room, sequence) => {
            sink.started(sub, Number(sequence));
            resolve();
          },
          message: (sequence, payload) => sink.deliver(sub, payload, performance.now(), sequence),
          ended: (code, message) => {
            if (closing) return;
            const reason = `stream ended: code ${code} ${message}`;
            sink.fail(sub, reason);
            reject(new Error(reason));
          },
          other: other && ((kind) => other(sub, kind)),
        });
        set.streams.push(stream);
      }),
    );
  }
  try {
    await Promise.all(subscribed);
  } catch (error) {
    set.close();
    throw error;
  }
  return set;
}

export const FANOUT_ROOM = "bench";

export class SeqcastFanout implements FanoutDriver {
  readonly publishErrors = new Problems();
  readonly subscriberErrors = new Problems();
  readonly sequenced = true;
  readonly version: string;
  readonly publishMode: string;
  private subscribers: SubscriberSet | undefined;
  private readonly sender: SeqcastSender;
  private readonly pending = new Set<Promise<void>>();
  private readonly onAck: Ack = (ack) => {
    const error = ackError(ack);
    if (error) this.publishErrors.add(`publish: ${error}`);
  };

  constructor(
    private readonly broker: BrokerChild,
    readonly name: string,
    mode: "stream" | "unary",
    causal?: BenchCausalContext,
  ) {
    this.version = broker.version;
    this.sender = new SeqcastSender(broker.url, mode, causal);
    this.publishMode =
      mode === "stream"
        ? "PublishStream, one message per request, each acknowledged by its result"
        : "unary Publish calls on one HTTP/2 connection, each acknowledged by its response";
  }

  get serverPid(): number {
    return this.broker.pid;
  }

  eventLoop(): Promise<EventLoopTimes | undefined> {
    return this.broker.eventLoop();
  }

  profile(command: string): Promise<void> {
    return this.broker.profile(command);
  }

  async connectSubscribers(n: number, sink: DeliverySink): Promise<void> {
    const wrapped: DeliverySink = {
      ...sink,
      fail: (sub, reason) => {
        this.subscriberErrors.add(`subscriber ${sub}: ${reason}`);
        sink.fail(sub, reason);
      },
    };
    this.subscribers = await openSubscribers(this.broker, n, 1, () => FANOUT_ROOM, wrapped);
  }

  publishWindowed(count: number, make: (k: number) => Uint8Array, window: number): Promise<void> {
    return publishWindowed(count, 1, window, (k) => this.sender.send([{ room: FANOUT_ROOM, payload: make(k) }], this.onAck));
  }

  publishOne(payload: Uint8Array): void {
    const acked = this.sender.send([{ room: FANOUT_ROOM, payload }], this.onAck);
    this.pending.add(acked);
    void acked.then(() => this.pending.delete(acked));
  }

  async settle(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  async close(): Promise<void> {
    this.subscribers?.close();
    await this.sender.close().catch((error: unknown) => this.publishErrors.add(String(error)));
  }
}
