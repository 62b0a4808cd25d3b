/**
 * JetStream's publish protocol by hand on a socket of its own: what
 * bench/lean-client.ts is to seqcast's SDK. nats.js builds every publish
 * through TextEncoder, a headers object and a validated subject, and the
 * load generator ran at ~87% of a core with the server at ~97%: the row
 * measured the client as much as nats-server.
 *
 * Per message: an HPUB to the stream's subject with a reply subject of its
 * own (`<inbox>.<k>`) and a `Nats-Msg-Id` header (JetStream's dedupe key,
 * as seqcast's client_message_id), written `batch` messages to one socket
 * write (seqcast's stream publisher packs as many into one request); the
 * acks (`{"stream":…,"seq":N}`) arrive on one inbox subscription and only
 * the sequence is read.
 */
import { randomUUID } from "node:crypto";
import net from "node:net";
import { P } from "../lib/params.js";
import { publishWindowed } from "../lib/window.js";
import type { AckedPublisher, OnAck } from "./driver.js";

const CRLF = Buffer.from("\r\n");

/** One group of messages sent together; it settles when each has its ack. */
interface Group {
  left: number;
  resolve: () => void;
}

export function rawJetStreamPublisher(subject: string, window: number, batch: number): AckedPublisher {
  const inbox = `_INBOX.bench${process.pid}x${Date.now()}`;
  let size = 1;
  while (size < window + batch) size *= 2;
  // Message k's group and ack callback, at k & mask: at most window + batch are unacknowledged.
  const groups = new Array<Group | undefined>(size).fill(undefined);
  const mask = size - 1;
  const keys = new Float64Array(size);
  let onAck: OnAck = () => {};
  let socket: net.Socket | undefined;
  let connected: Promise<void> | undefined;
  let failure: Error | undefined;
  const pongs: Array<() => void> = [];

  const ack = (k: number, sequence: number, error?: string) => {
    const group = groups[k & mask];
    if (!group) return;
    groups[k & mask] = undefined;
    onAck(k, sequence, error);
    if (--group.left === 0) group.resolve();
  };

  /** Every message still waiting is answered with the error (the row then fails, instead of waiting forever). */
  const fail = (error: Error) => {
    failure ??= error;
    groups.forEach((group, i) => group && ack(keys[i]!, 0, error.message));
    for (const pong of pongs.splice(0)) pong(); // a connect still waiting rejects with the failure
  };

  // The server's protocol: control lines, and MSG/HMSG followed by their payload.
  let pending = Buffer.alloc(0);
  let payloadOf: { subject: string; bytes: number; headerBytes: number } | undefined;
  const read = (chunk: Buffer) => {
    const buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    for (;;) {
      if (payloadOf) {
        if (buf.length - at < payloadOf.bytes + 2) break;
        const data = buf.subarray(at + payloadOf.headerBytes, at + payloadOf.bytes);
        const headers = buf.toString("latin1", at, at + payloadOf.headerBytes);
        at += payloadOf.bytes + 2;
        const k = Number(payloadOf.subject.slice(inbox.length + 1));
        payloadOf = undefined;
        if (headers) ack(k, 0, `no ack: ${headers.split("\r\n")[0]}`);
        else readAck(k, data);
        continue;
      }
      const eol = buf.indexOf(CRLF, at);
      if (eol < 0) break;
      const line = buf.toString("latin1", at, eol);
      at = eol + 2;
      if (line.startsWith("MSG ")) {
        const parts = line.split(" ");
        payloadOf = { subject: parts[1]!, bytes: Number(parts[parts.length - 1]), headerBytes: 0 };
      } else if (line.startsWith("HMSG ")) {
        const parts = line.split(" ");
        payloadOf = { subject: parts[1]!, bytes: Number(parts[parts.length - 1]), headerBytes: Number(parts[parts.length - 2]) };
      } else if (line === "PING") socket?.write("PONG\r\n");
      else if (line === "PONG") pongs.shift()?.();
      else if (line.startsWith("-ERR")) fail(new Error(`nats-server: ${line}`));
    }
    pending = at < buf.length ? Buffer.from(buf.subarray(at)) : Buffer.alloc(0);
  };

  const readAck = (k: number, data: Buffer) => {
    // {"stream":"…","seq":N} (an error or a duplicate has other keys: read those as text).
    const at = data.indexOf('"seq":');
    if (at < 0 || data.includes('"error"') || data.includes('"duplicate"')) {
      const text = data.toString();
      return ack(k, Number(/"seq":(\d+)/.exec(text)?.[1] ?? 0), text.includes('"duplicate":true') ? "acknowledged as a duplicate" : text);
    }
    let sequence = 0;
    for (let i = at + 6; i < data.length && data[i]! >= 0x30 && data[i]! <= 0x39; i++) sequence = sequence * 10 + data[i]! - 0x30;
    ack(k, sequence);
  };

  const connect = () =>
    (connected ??= new Promise<void>((resolve, reject) => {
      const [host, port] = P.natsUrl.includes(":") ? [P.natsUrl.split(":")[0]!, Number(P.natsUrl.split(":")[1])] : [P.natsUrl, 4222];
      const s = net.connect(port, host.replace(/^nats:\/\//, "") || "127.0.0.1");
      socket = s;
      s.setNoDelay(true);
      s.on("data", read);
      s.once("error", reject);
      s.once("close", () => fail(new Error("connection to nats-server closed")));
      const options = { verbose: false, pedantic: false, headers: true, no_responders: true, protocol: 1, name: "bench-jetstream-raw", lang: "bench", version: "0" };
      s.write(`CONNECT ${JSON.stringify(options)}\r\nSUB ${inbox}.* 1\r\nPING\r\n`);
      // The PONG: the server took CONNECT and SUB (an -ERR would have come first).
      pongs.push(() => (failure ? reject(failure) : resolve()));
    }));

  const send = (first: number, n: number, make: (k: number) => Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      if (failure) return reject(failure);
      const group: Group = { left: n, resolve };
      const parts: Buffer[] = [];
      for (let k = first; k < first + n; k++) {
        groups[k & mask] = group;
        keys[k & mask] = k;
        const payload = make(k);
        const head = `NATS/1.0\r\nNats-Msg-Id: ${randomUUID()}\r\n\r\n`;
        parts.push(Buffer.from(`HPUB ${subject} ${inbox}.${k} ${head.length} ${head.length + payload.length}\r\n${head}`, "latin1"));
        parts.push(Buffer.from(payload.buffer, payload.byteOffset, payload.length), CRLF);
      }
      socket!.write(Buffer.concat(parts));
    });

  return {
    description: `HPUB with a reply subject and a Nats-Msg-Id per message to a file-storage stream, written by hand ${batch === 1 ? "one message" : `up to ${batch} messages`} per socket write, ${window} awaiting their ack, acks read by a minimal parser`,
    run: async (count, make, callback) => {
      await connect();
      onAck = callback;
      await publishWindowed(count, batch, window, (first, n) => send(first, n, make));
    },
    close: async () => {
      socket?.end();
      socket?.destroy();
    },
  };
}
