import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type net from "node:net";
import { afterEach, describe, it, vi } from "vitest";
import { parseServeArgs } from "../../src/cli/serve.js";
import { BrokerError } from "../../src/broker/errors.js";
import { AUTO, resolveConnectionLimits, type ConnectionLimits } from "../../src/server/connection-limits.js";
import { Connections, type TrackedSession, type TrackedStream } from "../../src/server/connections.js";
import { frame, FrameDecoder, MAX_SKIPPED_MESSAGE_BYTES } from "../../src/server/grpc/frames.js";
import { jsonShapeExceeds, jsonShapeLimit } from "../../src/server/json-limits.js";
import { holdOversizedEnvelopes } from "../../src/server/oversize-guard.js";
import type { H2Stream } from "../../src/server/h2/stream.js";

/** A socket as Connections sees it: an address, destroy(), 'close'. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string) {
    super();
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit("close");
  }
}

/** An HTTP/2 session as Connections sees it. */
class FakeSession extends EventEmitter {
  goaway = false;
  close(): void {
    this.goaway = true;
  }
}

const limits = (overrides: Partial<ConnectionLimits> = {}): ConnectionLimits => ({
  maxConnections: 100,
  maxConnectionsPerAddress: 0,
  handshakeTimeoutMs: 1000,
  requestTimeoutMs: 0,
  idleTimeoutMs: 5000,
  ...overrides,
});

const asSocket = (s: FakeSocket) => s as unknown as net.Socket;

describe("Connections", () => {
  afterEach(() => vi.useRealTimers());

  it("admits up to the total and the per-address limit, and frees a slot when a connection closes", () => {
    const connections = new Connections(limits({ maxConnections: 3, maxConnectionsPerAddress: 2 }));
    const a = [new FakeSocket("::ffff:10.0.0.1"), new FakeSocket("10.0.0.1"), new FakeSocket("10.0.0.1")];
    assert.deepEqual(a.map((s) => connections.admit(asSocket(s))), [true, true, false], "::ffff:10.0.0.1 is 10.0.0.1");
    assert.equal(a[2]!.destroyed, true);
    const b = [new FakeSocket("10.0.0.2"), new FakeSocket("10.0.0.2")];
    assert.deepEqual(b.map((s) => connections.admit(asSocket(s))), [true, false], "the total is full");
    assert.deepEqual(connections.counts, { over_max_connections: 1, over_max_connections_per_ip: 1, handshake_timeout: 0, idle_timeout: 0, request_timeout: 0 });
    a[0]!.destroy();
    assert.equal(connections.admit(asSocket(new FakeSocket("10.0.0.1"))), true, "a freed slot takes the next");
    assert.equal(connections.open, 3);
    connections.close();
  });

  it("destroys a connection that shows no protocol within the handshake timeout, not before, and not one that did", async () => {
    vi.useFakeTimers();
    const connections = new Connections(limits({ handshakeTimeoutMs: 1000 }));
    const silent = new FakeSocket("10.0.0.1");
    const h1 = new FakeSocket("10.0.0.1");
    const h2 = new FakeSocket("10.0.0.1");
    const h2Partial = new FakeSocket("10.0.0.1");
    for (const s of [silent, h1, h2, h2Partial]) connections.admit(asSocket(s));
    connections.trackH1Socket(asSocket(h1));
    const session = new FakeSession();
    connections.trackH2Session(session as unknown as TrackedSession, asSocket(h2));
    session.emit("remoteSettings");
    connections.trackH2Session(new FakeSession() as unknown as TrackedSession, asSocket(h2Partial));
    await vi.advanceTimersByTimeAsync(900);
    assert.equal(silent.destroyed, false);
    await vi.advanceTimersByTimeAsync(500);
    assert.deepEqual([silent.destroyed, h2Partial.destroyed, h1.destroyed, h2.destroyed], [true, true, false, false]);
    assert.equal(connections.counts.handshake_timeout, 2);
    connections.close();
  });

  it("sends GOAWAY to an HTTP/2 connection without an open stream for the idle timeout", async () => {
    vi.useFakeTimers();
    const connections = new Connections(limits({ idleTimeoutMs: 5000 }));
    const busySocket = new FakeSocket("10.0.0.1");
    const idleSocket = new FakeSocket("10.0.0.1");
    const busy = new FakeSession();
    const idle = new FakeSession();
    for (const [socket, session] of [[busySocket, busy], [idleSocket, idle]] as const) {
      connections.admit(asSocket(socket));
      connections.trackH2Session(session as unknown as TrackedSession, asSocket(socket));
      session.emit("remoteSettings");
    }
    const stream = Object.assign(new EventEmitter(), { h2: busy });
    connections.trackStream(stream as unknown as TrackedStream);
    await vi.advanceTimersByTimeAsync(6000);
    assert.deepEqual([idle.goaway, busy.goaway], [true, false], "a connection with a subscriber's stream is not idle");
    stream.emit("close");
    await vi.advanceTimersByTimeAsync(4000);
    assert.equal(busy.goaway, false, "idle counts from its last stream's end");
    await vi.advanceTimersByTimeAsync(2000);
    assert.equal(busy.goaway, true);
    assert.equal(connections.counts.idle_timeout, 2);
    connections.close();
  });
});

describe("the request timeout of HTTP/2 calls", () => {
  afterEach(() => vi.useRealTimers());

  /** A stream as Connections sees it: whether the client ended its request, and close(code). */
  class FakeStream extends EventEmitter {
    closed = false;
    destroyed = false;
    endAfterHeaders = false;
    h2 = undefined;
    state = { remoteClose: 0 };
    rstCode: number | undefined;
    close(code: number): void {
      this.closed = true;
      this.rstCode = code;
      this.emit("close");
    }
  }

  it("resets a call whose request has not ended within it (CANCEL), but not a streaming one, nor one that ended", async () => {
    vi.useFakeTimers();
    const connections = new Connections(limits({ requestTimeoutMs: 1000 }));
    const [stalled, streaming, ended] = [new FakeStream(), new FakeStream(), new FakeStream()];
    connections.trackStream(stalled as unknown as TrackedStream);
    connections.trackStream(streaming as unknown as TrackedStream, true);
    connections.trackStream(ended as unknown as TrackedStream);
    ended.state.remoteClose = 1;
    await vi.advanceTimersByTimeAsync(900);
    assert.equal(stalled.closed, false);
    await vi.advanceTimersByTimeAsync(200);
    assert.deepEqual([stalled.rstCode, streaming.closed, ended.closed], [8, false, false]);
    assert.equal(connections.counts.request_timeout, 1);
    connections.close();
  });

  it("lets go of a call's request timer once its request was read to the end (an open Subscribe holds none)", async () => {
    vi.useFakeTimers();
    const connections = new Connections(limits({ requestTimeoutMs: 1000 }));
    const timersBefore = vi.getTimerCount();
    const [read, unread] = [new FakeStream(), new FakeStream()];
    connections.trackStream(read as unknown as TrackedStream);
    connections.trackStream(unread as unknown as TrackedStream);
    assert.equal(vi.getTimerCount(), timersBefore + 2);
    read.emit("end");
    assert.equal(vi.getTimerCount(), timersBefore + 1);
    await vi.advanceTimersByTimeAsync(1100);
    assert.deepEqual([read.closed, unread.rstCode], [false, 8]);
    assert.equal(connections.counts.request_timeout, 1);
    connections.close();
  });
});

describe("resolveConnectionLimits", () => {
  const auto = limits({ maxConnections: AUTO, maxConnectionsPerAddress: AUTO });

  it("keeps auto below the open-file limit, at most 10,000, and a tenth of it per address", () => {
    assert.deepEqual(pick(resolveConnectionLimits(auto, 1024)), [864, 86]);
    assert.deepEqual(pick(resolveConnectionLimits(auto, 1_048_576)), [10_000, 1000]);
    assert.deepEqual(pick(resolveConnectionLimits(auto, undefined)), [10_000, 1000]);
    assert.deepEqual(pick(resolveConnectionLimits(limits({ maxConnections: 50, maxConnectionsPerAddress: 0 }), 1024)), [50, 0]);
  });
  const pick = (l: ConnectionLimits) => [l.maxConnections, l.maxConnectionsPerAddress];
});

describe("the connection settings of seqcast serve", () => {
  it("default to auto and the documented timeouts, and read flags", () => {
    const defaults = parseServeArgs([], {})!;
    assert.deepEqual(defaults.connections, {
      maxConnections: AUTO,
      maxConnectionsPerAddress: AUTO,
      handshakeTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      idleTimeoutMs: 300_000,
    });
    const set = parseServeArgs(
      ["--max-connections", "500", "--max-connections-per-ip", "0", "--handshake-timeout", "2s", "--idle-timeout", "0", "--request-timeout", "30s"],
      {},
    )!;
    assert.deepEqual(set.connections, { maxConnections: 500, maxConnectionsPerAddress: 0, handshakeTimeoutMs: 2000, requestTimeoutMs: 30_000, idleTimeoutMs: 0 });
    assert.throws(() => parseServeArgs(["--max-connections", "0"], {}), /--max-connections: "0" is not a positive integer/);
    assert.throws(() => parseServeArgs(["--handshake-timeout", "0"], {}), /--handshake-timeout: "0" must be longer than 0/);
  });
});

describe("FrameDecoder and an oversized message", () => {
  const header = (length: number) => {
    const h = Buffer.alloc(5);
    h.writeUInt32BE(length, 1);
    return h;
  };

  it("drops its bytes as they come and refuses it after its last byte; messages before it are returned", () => {
    const decoder = new FrameDecoder(100, undefined);
    const before = frame(Buffer.from("ok"));
    assert.deepEqual(decoder.push(Buffer.concat([before, header(1000), Buffer.alloc(10)])).map((m) => Buffer.from(m).toString()), ["ok"]);
    assert.equal(decoder.push(Buffer.alloc(500)).length, 0, "dropped, not refused yet: the client is still sending it");
    assert.equal(decoder.partialBytes, 490);
    assert.throws(
      () => decoder.push(Buffer.alloc(490)),
      (e: unknown) => e instanceof BrokerError && e.code === "resource_exhausted" && e.reason === "REQUEST_TOO_LARGE",
    );
    assert.equal(decoder.refused?.reason, "REQUEST_TOO_LARGE");
  });

  it("refuses at its length prefix one too large to wait for", () => {
    const decoder = new FrameDecoder(100, undefined);
    assert.throws(() => decoder.push(header(MAX_SKIPPED_MESSAGE_BYTES + 1)), /larger than the 100 bytes/);
  });
});

describe("the JSON shape limit", () => {
  it("counts the nesting and the number of objects and arrays outside strings, stopping past a limit", () => {
    assert.equal(jsonShapeExceeds(Buffer.from('{"a":[{"b":[1]}]}'), 4), undefined);
    assert.equal(jsonShapeExceeds(Buffer.from('{"a":[{"b":[[1]]}]}'), 4), "nested deeper than 4 levels");
    assert.equal(jsonShapeExceeds(Buffer.from(`{"a":"${"[".repeat(100)}\\"${"{".repeat(100)}"}`), 2), undefined, "brackets in strings, an escaped quote");
    assert.equal(jsonShapeExceeds(Buffer.from(`${"[".repeat(1_000_000)}`), 32), "nested deeper than 32 levels");
    assert.equal(jsonShapeExceeds(Buffer.from(`[${"{},".repeat(5)}{}]`), 32, 6), "made of more than 6 objects and arrays");
    assert.equal(jsonShapeExceeds(Buffer.from(`[${"{},".repeat(4)}{}]`), 32, 6), undefined);
  });

  it("refuses such JSON with INVALID_ARGUMENT (INVALID_REQUEST) and decodes the rest", () => {
    const { textDecoder } = jsonShapeLimit(3, 10) as unknown as { textDecoder: { decode(b: Uint8Array): string } };
    assert.equal(textDecoder.decode(Buffer.from('{"room":"é"}')), '{"room":"é"}');
    assert.throws(() => textDecoder.decode(Buffer.from("[[[[1]]]]")), (e: Error & { code?: number }) => /nested deeper than 3 levels/.test(e.message) && e.code === 3);
    assert.throws(() => textDecoder.decode(Buffer.from(`[${"[],".repeat(10)}[]]`)), /more than 10 objects and arrays/);
  });
});

describe("holdOversizedEnvelopes (connect-node's requests on HTTP/2)", () => {
  /** A stream as the guard sees it: Node pushes the body into it; `got` is what connect-node would read. */
  const fakeStream = () => {
    const got: Buffer[] = [];
    const stream = { readableLength: 0, push: (chunk: Buffer | null) => (chunk && got.push(Buffer.from(chunk)), true) };
    return { stream, got, read: () => Buffer.concat(got) };
  };
  /** A length-prefixed message of `length` bytes of `fill`. */
  const envelope = (length: number, fill = 1) => frame(Buffer.alloc(length, fill));

  it("passes messages through untouched, whatever the chunking", () => {
    const { stream, read } = fakeStream();
    holdOversizedEnvelopes(stream as unknown as H2Stream, 100);
    const body = Buffer.concat([envelope(10), envelope(100, 2), envelope(0)]);
    const cuts = [0, 3, 7, 17, 108, 113, body.length]; // within prefixes and bodies
    for (let i = 1; i < cuts.length; i++) stream.push(body.subarray(cuts[i - 1], cuts[i]));
    assert.deepEqual(read(), body);
  });

  it("drops an oversized message as it arrives and hands on its prefix after its last byte, then the rest", () => {
    const { stream, read } = fakeStream();
    holdOversizedEnvelopes(stream as unknown as H2Stream, 100);
    const before = envelope(10);
    const big = envelope(1000, 3);
    const after = envelope(5, 4);
    stream.push(Buffer.concat([before, big.subarray(0, 500)]));
    assert.deepEqual(read(), before, "connect-node has not seen the oversized prefix yet");
    stream.push(Buffer.concat([big.subarray(500), after]));
    assert.deepEqual(read(), Buffer.concat([before, big.subarray(0, 5), after]), "its prefix once all of it came, none of its bytes");
  });

  it("hands on the prefix of an oversized message cut short when the body ends", () => {
    const { stream, read } = fakeStream();
    holdOversizedEnvelopes(stream as unknown as H2Stream, 100);
    const big = envelope(1000);
    stream.push(big.subarray(0, 300));
    stream.push(null as unknown as Buffer);
    assert.deepEqual(read(), big.subarray(0, 5));
  });
});
