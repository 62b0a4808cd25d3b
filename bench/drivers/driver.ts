/**
 * What a scenario asks of a system. A fan-out driver connects subscribers
 * (each on its own connection) and publishes through one publisher
 * connection; an acknowledged publisher reports each message's
 * acknowledgement (with the position the system assigned, when it has one).
 */
import type { EventLoopTimes } from "../lib/broker-process.js";
import type { Problems } from "../lib/util.js";

export interface DeliverySink {
  /** seqcast: subscriber `sub`'s subscription starts after `sequence`. */
  started(sub: number, sequence: number): void;
  /** One delivery; `sequence` when the system assigns one (seqcast, a JetStream consumer). */
  deliver(sub: number, payload: Uint8Array, recvTime: number, sequence?: number): void;
  /** Subscriber `sub` was cut off. */
  fail(sub: number, reason: string): void;
}

export interface FanoutDriver {
  readonly name: string;
  readonly version: string;
  readonly serverPid: number | undefined;
  /** The subscribers see a broker-assigned sequence (seqcast). */
  readonly sequenced: boolean;
  /** How the publisher is acknowledged, for the report. */
  readonly publishMode: string;
  readonly publishErrors: Problems;
  readonly subscriberErrors: Problems;
  /** Connects `n` subscribers, each on its own connection; resolves once the server has registered all. */
  connectSubscribers(n: number, sink: DeliverySink): Promise<void>;
  /** Publishes `count` messages as fast as the window allows: at most `window` unacknowledged. */
  publishWindowed(count: number, make: (k: number) => Uint8Array, window: number): Promise<void>;
  /** Sends one message without waiting (paced phases). */
  publishOne(payload: Uint8Array): void;
  /** Waits for the acknowledgements of everything sent by publishOne. */
  settle(): Promise<void>;
  /** Cumulative event-loop times of the server (Node servers only). */
  eventLoop?(): Promise<EventLoopTimes | undefined>;
  /** CPU profile commands for the server (Node servers only). */
  profile?(command: string): Promise<void>;
  close(): Promise<void>;
}

/** The acknowledgement of message `k`: its position's sequence (0 when the system has none) or an error. */
export type OnAck = (k: number, sequence: number, error?: string) => void;

export interface AckedPublisher {
  /** What this publisher does, for the report. */
  readonly description: string;
  /**
   * Publishes messages 0..count-1 (to the room or subject the publisher was
   * made for), at most the publisher's window unacknowledged; resolves when
   * every message was acknowledged.
   */
  run(count: number, make: (k: number) => Uint8Array, onAck: OnAck): Promise<void>;
  close(): Promise<void>;
}
