import assert from "node:assert/strict";
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { createSeqcastClient } from "../../src/client/client.js";
import { SubscriptionState } from "../../src/client/subscription.js";
import { eventually, Recorder, TEST_SECRET, testToken } from "./harness.js";

const run = promisify(execFile);
const BUF = "node_modules/.bin/buf";

/** `seqcast serve` as a user starts it: its own process, from the package bin. */
async function spawnServe(extra: string[] = []): Promise<{ child: ChildProcess; url: string; port: number; output: () => string }> {
  const dataDir = mkdtempSync(join(tmpdir(), "seqcast-serve-"));
  const child = spawn(process.execPath, ["bin/seqcast.js", "serve", "--port", "0", "--data-dir", dataDir, ...extra], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, SEQCAST_JWT_SECRET: TEST_SECRET },
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  await eventually(() => output.includes("seqcast listening") || child.exitCode !== null, "serve to listen", 20_000);
  const line = output.split("\n").find((l) => l.includes("seqcast listening"));
  assert.ok(line, `serve did not start: ${output}`);
  const { url, port } = JSON.parse(line);
  return { child, url, port, output: () => output };
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once("exit", (code) => resolve(code))));

describe("seqcast serve, inspected with the real buf curl", () => {
  let broker: Awaited<ReturnType<typeof spawnServe>>;
  before(async () => {
    broker = await spawnServe();
  });
  after(async () => {
    broker.child.kill("SIGKILL");
  });

  it("lists its services through server reflection", async () => {
    const { stdout } = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", broker.url]);
    const services = stdout.trim().split("\n").sort();
    for (const s of ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "seqcast.v1.PubSubService"])
      assert.ok(services.includes(s), `${s} in ${services}`);
    const methods = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-methods", broker.url]);
    assert.match(methods.stdout, /seqcast\.v1\.PubSubService\/Subscribe/);
  });

  it("answers a unary call made from reflection alone (gRPC and Connect)", async () => {
    for (const protocol of [["--protocol", "grpc", "--http2-prior-knowledge"], ["--protocol", "connect"]]) {
      const { stdout } = await run(BUF, [
        "curl", ...protocol,
        "-H", `authorization: Bearer ${testToken("curl")}`,
        "-d", '{"room": "curl.unary", "content": "from buf curl"}',
        `${broker.url}/seqcast.v1.PubSubService/Publish`,
      ]);
      const response = JSON.parse(stdout);
      assert.ok(response.position.epoch.length > 0);
      assert.ok(["1", "2"].includes(response.position.sequence), stdout);
    }
    const history = await run(BUF, [
      "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-H", `authorization: Bearer ${testToken("curl")}`,
      "-d", '{"room": "curl.unary"}', `${broker.url}/seqcast.v1.PubSubService/GetHistory`,
    ]);
    assert.deepEqual(JSON.parse(history.stdout).messages.map((m: { content: string }) => m.content), ["from buf curl", "from buf curl"]);
  });

  it("streams Subscribe to buf curl, printing messages published meanwhile", async () => {
    const curl = spawn(BUF, [
      "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-H", `authorization: Bearer ${testToken("watcher")}`,
      "-d", '{"rooms": [{"room": "curl.stream"}], "device": "buf-curl"}',
      `${broker.url}/seqcast.v1.PubSubService/Subscribe`,
    ]);
    let out = "";
    curl.stdout.on("data", (d) => (out += d));
    curl.stderr.on("data", (d) => (out += d));
    try {
      await eventually(() => out.includes('"subscribed"'), "buf curl's subscribed event", 20_000);
      const pub = createSeqcastClient({ baseUrl: broker.url, token: testToken("alice") });
      for (const text of ["one", "two", "three"]) await pub.publish("curl.stream", text);
      await eventually(() => out.includes('"three"'), "the published messages in buf curl's output");
      const contents = [...out.matchAll(/"content":\s*"([^"]*)"/g)].map((m) => m[1]);
      assert.deepEqual(contents, ["one", "two", "three"]);
      assert.match(out, /"sender":\s*"alice"/);
    } finally {
      curl.kill("SIGINT");
    }
  });

  it("reports health SERVING", async () => {
    const { stdout } = await run(BUF, [
      "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", "{}", `${broker.url}/grpc.health.v1.Health/Check`,
    ]);
    assert.equal(JSON.parse(stdout).status, "SERVING");
  });
});

describe("graceful shutdown", () => {
  it("on SIGTERM sends presence leaves, ends streams with UNAVAILABLE, and exits 0", async () => {
    const broker = await spawnServe();
    try {
      const watcher = new Recorder(createSeqcastClient({ baseUrl: broker.url, token: testToken("walter") }).subscribe(["bye"], { backoff: { baseMs: 5_000, maxMs: 5_000 } }));
      const bob = new Recorder(
        createSeqcastClient({ baseUrl: broker.url, token: testToken("bob"), protocol: "connect", httpVersion: "1.1" }).subscribe(["bye"], {
          backoff: { baseMs: 5_000, maxMs: 5_000 },
        }),
      );
      await Promise.all([watcher.subscribedTo("bye"), bob.subscribedTo("bye")]);
      const probe = createSeqcastClient({ baseUrl: broker.url, token: testToken("probe") });
      for (let i = 0; i < 100 && (await probe.presence("bye")).sessionCount < 2; i++) await new Promise((r) => setTimeout(r, 20));
      broker.child.kill("SIGTERM");
      assert.equal(await exited(broker.child), 0, broker.output());
      for (const r of [watcher, bob]) {
        const change = r.ofType("state").find((e) => e.to === SubscriptionState.Reconnecting);
        assert.ok(change, `stream end seen (${r.summary()})`);
        assert.equal(change.error?.code, 14 /* UNAVAILABLE */, change.reason);
        assert.match(change.reason, /shutting down/);
      }
      // Whichever session was closed second saw the other leave before its own stream ended.
      const leaves = [...watcher.ofType("presence"), ...bob.ofType("presence")].filter((e) => e.kind === "leave");
      assert.ok(leaves.length >= 1, "at least one presence leave was delivered during shutdown");
      await Promise.all([watcher.subscription.close(), bob.subscription.close()]);
    } finally {
      broker.child.kill("SIGKILL");
    }
  });
});
