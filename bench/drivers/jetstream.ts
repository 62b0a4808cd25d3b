/**
 * NATS JetStream through nats.js (v2 API): a stream with file storage on a
 * subject of its own per run, created before and deleted after; publishes
 * are asynchronous `js.publish()` calls with at most `window` awaiting their
 * ack, and every ack carries the stream sequence the server assigned.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { consumerOpts, StorageType, type JetStreamClient, type JetStreamManager, type NatsConnection } from "nats";
import { describe } from "../lib/util.js";
import { publishWindowed } from "../lib/window.js";
import type { AckedPublisher, DeliverySink } from "./driver.js";
import { natsConnection } from "./nats.js";

export interface BenchStream {
  name: string;
  subject: string;
  jsm: JetStreamManager;
  js: JetStreamClient;
  /** Deletes the stream (and its data). */
  remove(): Promise<void>;
}

/** A fresh file-storage stream capturing `subject` (one replica: this is a single server). */
export async function createStream(nc: NatsConnection, name: string, subject: string): Promise<BenchStream> {
  const jsm = await nc.jetstreamManager();
  // A stream of an interrupted earlier run with the same name would otherwise make sequences start above 1.
  await jsm.streams.delete(name).catch(() => false);
  await jsm.streams.add({ name, subjects: [subject], storage: StorageType.File, num_replicas: 1 });
  return {
    name,
    subject,
    jsm,
    js: nc.jetstream(),
    remove: async () => {
      await jsm.streams.delete(name).catch(() => false);
    },
  };
}

export function jetStreamPublisher(stream: BenchStream, window: number): AckedPublisher {
  // A random id per message, as the seqcast SDK's client_message_ids are.
  return {
    description: `js.publish() with a Nats-Msg-Id to a file-storage stream, ${window} publishes awaiting their ack`,
    run: (count, make, onAck) =>
      publishWindowed(count, 1, window, async (k) => {
        try {
          // A message id, as seqcast's publishes carry a client_message_id: both dedupe.
          const ack = await stream.js.publish(stream.subject, make(k), { msgID: randomUUID() });
          onAck(k, ack.seq, ack.duplicate ? "acknowledged as a duplicate" : undefined);
        } catch (error) {
          onAck(k, 0, describe(error));
        }
      }),
    close: async () => {},
  };
}

/**
 * `n` ordered push consumers of the stream, each on its own connection:
 * JetStream's own in-order delivery with the stream sequence on every
 * message (flow control and idle heartbeats on).
 */
export async function orderedConsumers(stream: BenchStream, n: number, sink: DeliverySink, isClosing: () => boolean): Promise<NatsConnection[]> {
  const connections: NatsConnection[] = [];
  for (let sub = 0; sub < n; sub++) {
    const nc = await natsConnection(`bench-js-sub-${sub}`);
    connections.push(nc);
    void nc.closed().then((error) => {
      if (!isClosing()) sink.fail(sub, `connection closed${error ? `: ${describe(error)}` : ""}`);
    });
    const opts = consumerOpts();
    opts.orderedConsumer();
    opts.deliverAll();
    opts.callback((error, msg) => {
      if (error) {
        if (!isClosing()) sink.fail(sub, describe(error));
      } else if (msg) sink.deliver(sub, msg.data, performance.now(), msg.seq);
    });
    await nc.jetstream().subscribe(stream.subject, opts);
    sink.started(sub, 0);
  }
  await Promise.all(connections.map((nc) => nc.flush()));
  return connections;
}
