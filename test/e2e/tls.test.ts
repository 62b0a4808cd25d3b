import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { PubSubService } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { afterAll, beforeAll } from "vitest";
import { defaultBrokerConfig } from "../../src/broker/config.js";
import { createSeqcastClient } from "../../src/client/index.js";
import { createTransport } from "../../src/client/transport.js";
import { createMemoryEngine } from "../../src/engine/memory.js";
import { startServer, type RunningServer } from "../../src/server/server.js";
import { TlsCertificate } from "../../src/server/tls.js";
import { deleteKeys, redisNodeArgs, SHARED_REDIS_URL, testPrefix } from "../support/redis.js";
import { describe, exited, PROTOCOLS, Recorder, spawnServe, test, testAuthenticate, testToken, waitUntil, type ServeProcess } from "../support/fixtures.js";

const run = promisify(execFile);

interface Certificate {
  cert: string;
  key: string;
  /** The certificate's PEM: what a client trusts. */
  pem: string;
}

/** A self-signed P-256 certificate for 127.0.0.1 and localhost, made by openssl as an operator would. */
function makeCertificate(dir: string, name: string): Certificate {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${name}`, "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
    { stdio: "ignore" },
  );
  return { cert, key, pem: readFileSync(cert, "utf8") };
}

/** The common name of the certificate a new connection to `port` is shown (trusting nothing, only looking). */
function presentedName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ALPNProtocols: ["h2"] }, () => {
      const name = socket.getPeerCertificate().subject.CN;
      socket.destroy();
      resolve(Array.isArray(name) ? name.join(",") : (name ?? ""));
    });
    socket.once("error", reject);
  });
}

/** The protocol ALPN settled on, offering `offered`. */
function negotiated(port: number, ca: string, offered: string[]): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost", ALPNProtocols: offered }, () => {
      const protocol = socket.alpnProtocol ?? false;
      socket.destroy();
      resolve(protocol);
    });
    socket.once("error", reject);
  });
}

/** Sends `hello` in plaintext and waits for the broker to close: what it sent back, and when it closed. */
function plaintextExchange(port: number, hello: string): Promise<{ received: number; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const start = Date.now();
    let received = 0;
    const socket = net.connect(port, "127.0.0.1", () => socket.write(hello));
    socket.on("data", (chunk: Buffer) => (received += chunk.length));
    socket.on("error", () => {});
    socket.once("close", () => resolve({ received, closedAfterMs: Date.now() - start }));
  });
}

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .once("error", reject);
  });
}

async function rejection(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    return ConnectError.from(error);
  }
  assert.fail("the call succeeded");
}

const dir = mkdtempSync(join(tmpdir(), "seqcast-tls-"));
const first = makeCertificate(dir, "seqcast-first");
const second = makeCertificate(dir, "seqcast-second");

/** An in-process broker (memory engine) serving TLS with the first certificate. */
async function startTlsBroker(handshakeTimeoutMs: number): Promise<RunningServer> {
  return startServer({
    config: defaultBrokerConfig,
    engine: createMemoryEngine,
    port: 0,
    authenticate: await testAuthenticate(),
    tls: TlsCertificate.load({ cert: first.cert, key: first.key }),
    connections: { handshakeTimeoutMs },
  });
}

describe("TLS on the broker's one port", () => {
  let server: RunningServer;
  beforeAll(async () => {
    // Long enough that a connection closed below was closed by TLS, not by the reaper of silent connections.
    server = await startTlsBroker(60_000);
  });
  afterAll(() => server.close());

  test("says https in its URL", () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  for (const p of [...PROTOCOLS, { name: "connect (HTTP/2)", protocol: "connect", httpVersion: "2" } as const]) {
    test(`delivers in order over ${p.name} to a client that trusts the certificate`, async () => {
      const room = `tls.${p.protocol}.${p.httpVersion}`;
      const options = { baseUrl: server.url, protocol: p.protocol, httpVersion: p.httpVersion, ca: first.pem };
      const reader = createSeqcastClient({ ...options, token: testToken("reader") });
      const writer = createSeqcastClient({ ...options, token: testToken("writer") });
      const recorder = new Recorder(reader.subscribe([room]));
      try {
        await recorder.subscribedTo(room);
        for (const text of ["one", "two", "three"]) await writer.publish(room, text);
        await recorder.until((r) => r.messages(room).length === 3, "3 messages");
        assert.deepEqual(recorder.contents(room), ["one", "two", "three"]);
        assert.deepEqual(recorder.sequences(room), [1, 2, 3]);
        const history = await writer.history(room);
        assert.deepEqual(history.messages.map((m) => m.content), ["one", "two", "three"]);
      } finally {
        await recorder.subscription.close();
      }
    });
  }

  test("offers HTTP/2 and HTTP/1.1 by ALPN, serves /metrics over HTTPS with the certificate's expiry, and reflection to buf curl", async () => {
    assert.equal(await negotiated(server.port, first.pem, ["h2", "http/1.1"]), "h2");
    assert.equal(await negotiated(server.port, first.pem, ["http/1.1"]), "http/1.1");
    const metrics = await httpsGet(`${server.url}/metrics`, first.pem);
    assert.equal(metrics.status, 200);
    // This very request is an HTTP/1.1 connection over TLS.
    assert.match(metrics.body, /^seqcast_connections\{protocol="http1"\} [1-9]/m);
    const expiry = Number(/^seqcast_tls_certificate_expiry_timestamp_seconds (\S+)$/m.exec(metrics.body)?.[1]);
    assert.equal(expiry, Date.parse(new X509Certificate(first.pem).validTo) / 1000);
    // Reflection over TLS, as an operator inspects the broker.
    const { stdout } = await run("node_modules/.bin/buf", ["curl", "--cacert", first.cert, "--list-services", server.url]);
    assert.match(stdout, /^seqcast\.v1\.PubSubService$/m);
  });

  test("a client that does not trust the certificate is refused, a plaintext connection is closed; the others are still served", async () => {
    // One call each, without the SDK's retries (it retries INTERNAL and UNAVAILABLE for a while: a certificate may be renewed).
    for (const p of PROTOCOLS) {
      const untrusting = createClient(PubSubService, createTransport({ baseUrl: server.url, protocol: p.protocol, httpVersion: p.httpVersion }));
      const refused = await rejection(untrusting.getHistory({ room: "tls.refused" }, { headers: { authorization: `Bearer ${testToken("mallory")}` } }));
      // connect-node reports the failed verification as INTERNAL, saying why.
      assert.equal(refused.code, Code.Internal, `${p.name}: ${refused.message}`);
      assert.match(refused.message, /self-signed certificate/);
    }
    // Plaintext HTTP/2 (and HTTP/1.1) to the TLS port: closed at once, without a byte in the clear.
    for (const hello of ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"]) {
      const { received, closedAfterMs } = await plaintextExchange(server.port, hello);
      assert.equal(received, 0, hello);
      assert.ok(closedAfterMs < 30_000, `closed after ${closedAfterMs} ms`);
    }
    const trusting = createSeqcastClient({ baseUrl: server.url, token: testToken("alice"), ca: first.pem });
    const history = await trusting.history("tls.refused");
    assert.equal(history.messages.length, 0);
    await trusting.publish("tls.refused", "served");
    assert.deepEqual((await trusting.history("tls.refused")).messages.map((m) => m.content), ["served"]);
  });
});

describe("TLS handshakes that stall", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startTlsBroker(500);
  });
  afterAll(() => server.close());

  test("a half-sent ClientHello, or a handshake followed by silence (HTTP/2 or HTTP/1.1), is closed by the handshake timeout; others are served meanwhile", async () => {
    // The first bytes of a TLS handshake record, and no more.
    const partial = net.connect(server.port, "127.0.0.1", () => partial.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])));
    partial.on("error", () => {});
    // A complete TLS handshake, then not a byte of HTTP/2, or of HTTP/1.1. (They read what comes, so they see the close.)
    const silent = ["h2", "http/1.1"].map((protocol) => {
      const socket = tls.connect({ host: "127.0.0.1", port: server.port, ca: first.pem, servername: "localhost", ALPNProtocols: [protocol] });
      socket.on("error", () => {});
      socket.resume();
      return socket;
    });
    await Promise.all(silent.map((socket) => new Promise<void>((resolve) => socket.once("secureConnect", () => resolve()))));
    const client = createSeqcastClient({ baseUrl: server.url, token: testToken("alice"), ca: first.pem });
    await client.publish("tls.stall", "served meanwhile");
    const closed = () => [partial, ...silent].map((socket) => socket.destroyed);
    await waitUntil(() => closed().every(Boolean), () => `the stalled connections closed (${closed()}, ${JSON.stringify(server.connectionCounts)})`, 20_000);
    assert.equal(server.connectionCounts.handshake_timeout, 3);
    assert.deepEqual((await client.history("tls.stall")).messages.map((m) => m.content), ["served meanwhile"]);
  });
});

describe("seqcast serve --tls-cert --tls-key", () => {
  test("refuses to start on a half or wrong configuration, saying which file is wrong", async () => {
    const cases: Array<{ args: string[]; says: RegExp }> = [
      { args: ["--tls-cert", first.cert], says: /--tls-key/ },
      { args: ["--tls-key", first.key], says: /--tls-cert/ },
      { args: ["--tls-cert", join(dir, "absent.crt"), "--tls-key", first.key], says: /absent\.crt/ },
      { args: ["--tls-cert", first.cert, "--tls-key", second.key], says: /seqcast-second\.key.*not the private key of.*seqcast-first\.crt/ },
      { args: ["--tls-cert", first.key, "--tls-key", first.key], says: /seqcast-first\.key.*no PEM certificate/ },
    ];
    for (const { args, says } of cases) {
      const failed = await spawnServe(["--engine", "memory", ...args]).then(
        (broker) => {
          broker.child.kill("SIGKILL");
          return undefined;
        },
        (error: Error) => error.message,
      );
      assert.ok(failed !== undefined, `started with ${args.join(" ")}`);
      assert.match(failed, says);
    }
  });

  describe("one broker, certificates replaced while it serves", () => {
    let broker: ServeProcess;
    let certFile: string;
    let keyFile: string;
    beforeAll(async () => {
      // The files an operator's renewal job rewrites in place.
      certFile = join(dir, "live.crt");
      keyFile = join(dir, "live.key");
      writeFileSync(certFile, readFileSync(first.cert));
      writeFileSync(keyFile, readFileSync(first.key));
      broker = await spawnServe(["--engine", "memory", "--tls-cert", certFile, "--tls-key", keyFile]);
    });
    afterAll(async () => {
      broker.child.kill("SIGKILL");
      await exited(broker.child);
    });

    test("logs https and the certificate it serves", () => {
      assert.match(broker.url, /^https:\/\//);
      const listening = JSON.parse(broker.output().split("\n").find((l) => l.includes("seqcast listening"))!);
      assert.equal(listening.tls.subject, "CN=seqcast-first");
      assert.ok(Date.parse(listening.tls.validTo) > Date.now());
      // A certificate of two days: the start says it expires soon.
      assert.match(broker.output(), /"subject":"CN=seqcast-first".*tls certificate expires soon/);
    });

    test("SIGHUP loads the new files for new connections; open streams go on; a bad file keeps the old certificate", async () => {
      const room = "tls.rotation";
      const reader = createSeqcastClient({ baseUrl: broker.url, token: testToken("reader"), ca: `${first.pem}${second.pem}` });
      const recorder = new Recorder(reader.subscribe([room]));
      try {
        await recorder.subscribedTo(room);
        const writer = createSeqcastClient({ baseUrl: broker.url, token: testToken("writer"), ca: first.pem });
        await writer.publish(room, "before");
        assert.equal(await presentedName(broker.port), "seqcast-first");

        writeFileSync(certFile, readFileSync(second.cert));
        writeFileSync(keyFile, readFileSync(second.key));
        broker.child.kill("SIGHUP");
        await waitUntil(() => broker.output().includes("tls certificate reloaded"), "the reload's log line");
        assert.equal(await presentedName(broker.port), "seqcast-second");
        // A new client must trust the new certificate; the subscriber's connection, made before, still streams.
        const renewed = createSeqcastClient({ baseUrl: broker.url, token: testToken("writer"), ca: second.pem });
        await renewed.publish(room, "after");
        await recorder.until((r) => r.messages(room).length === 2, "both messages");
        assert.deepEqual(recorder.contents(room), ["before", "after"]);

        writeFileSync(certFile, "not a certificate\n");
        broker.child.kill("SIGHUP");
        await waitUntil(() => broker.output().includes("tls certificate not reloaded"), "the failed reload's log line");
        assert.match(broker.output(), /live\.crt: no PEM certificate in it.*tls certificate not reloaded/);
        // A certificate of two days: each load says it expires soon.
        assert.match(broker.output(), /"subject":"CN=seqcast-second".*tls certificate expires soon/);
        assert.equal(broker.child.exitCode, null);
        assert.equal(await presentedName(broker.port), "seqcast-second");
        await renewed.publish(room, "still served");
        await recorder.until((r) => r.messages(room).length === 3, "the third message");
      } finally {
        await recorder.subscription.close();
      }
    });
  });

  test("with --workers 2, the primary passes SIGHUP on: each worker reloads, and both serve the new certificate", async ({ serve, cleanup }) => {
    const prefix = testPrefix("tls-workers");
    cleanup(() => deleteKeys(SHARED_REDIS_URL, prefix));
    const certFile = join(dir, "workers.crt");
    const keyFile = join(dir, "workers.key");
    writeFileSync(certFile, readFileSync(first.cert));
    writeFileSync(keyFile, readFileSync(first.key));
    const broker = await serve(["--workers", "2", "--tls-cert", certFile, "--tls-key", keyFile, ...redisNodeArgs(SHARED_REDIS_URL, prefix)]);
    assert.match(broker.url, /^https:\/\//);
    writeFileSync(certFile, readFileSync(second.cert));
    writeFileSync(keyFile, readFileSync(second.key));
    broker.child.kill("SIGHUP");
    const reloads = () => broker.output().split("\n").filter((l) => l.includes("tls certificate reloaded")).length;
    await waitUntil(() => reloads() === 2, () => `two reloads: ${broker.output()}`);
    // The primary deals connections out in turn: several in a row reach both workers.
    for (let i = 0; i < 4; i++) assert.equal(await presentedName(broker.port), "seqcast-second");
    const client = createSeqcastClient({ baseUrl: broker.url, token: testToken("alice"), ca: second.pem });
    await client.publish("tls.workers", "served");
    assert.deepEqual((await client.history("tls.workers")).messages.map((m) => m.content), ["served"]);
  });
});
