import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll } from "vitest";
import { createSeqcastClient } from "../../src/client/index.js";
import { SubscriptionState } from "../../src/client/subscription.js";
import { describe, exited, Recorder, spawnServe, test, testToken, waitUntil, type ServeProcess } from "../support/fixtures.js";

const run = promisify(execFile);
const BUF = "node_modules/.bin/buf";

describe("seqcast serve, inspected with the real buf curl", () => {
  // One process for these read-only inspections: starting one costs a tsx compile.
  let broker: ServeProcess;
  beforeAll(async () => {
    broker = await spawnServe();
  });
  afterAll(async () => {
    broker.child.kill("SIGKILL");
    await exited(broker.child);
  });

  test("lists its services through server reflection", async () => {
    const { stdout } = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", broker.url]);
    const services = stdout.trim().split("\n").sort();
    for (const s of ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "seqcast.v1.PubSubService"])
      assert.ok(services.includes(s), `${s} in ${services}`);
    const methods = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-methods", broker.url]);
    assert.match(methods.stdout, /seqcast\.v1\.PubSubService\/Subscribe/);
  });

  test("answers a unary call made from reflection alone (gRPC and Connect)", async () => {
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

  test("streams Subscribe to buf curl, printing messages published meanwhile", async () => {
    const curl = spawn(BUF, [
      "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-H", `authorization: Bearer ${testToken("watcher")}`,
      "-d", '{"rooms": [{"room": "curl.stream"}], "device": "buf-curl"}',
      `${broker.url}/seqcast.v1.PubSubService/Subscribe`,
    ]);
    let out = "";
    curl.stdout.on("data", (d) => (out += d));
    curl.stderr.on("data", (d) => (out += d));
    try {
      await waitUntil(() => out.includes('"subscribed"'), "buf curl's subscribed event", 20_000);
      const pub = createSeqcastClient({ baseUrl: broker.url, token: testToken("alice") });
      for (const text of ["one", "two", "three"]) await pub.publish("curl.stream", text);
      await waitUntil(() => out.includes('"three"'), "the published messages in buf curl's output");
      const contents = [...out.matchAll(/"content":\s*"([^"]*)"/g)].map((m) => m[1]);
      assert.deepEqual(contents, ["one", "two", "three"]);
      assert.match(out, /"sender":\s*"alice"/);
    } finally {
      curl.kill("SIGINT");
    }
  });

  test("reports health SERVING", async () => {
    const { stdout } = await run(BUF, [
      "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", "{}", `${broker.url}/grpc.health.v1.Health/Check`,
    ]);
    assert.equal(JSON.parse(stdout).status, "SERVING");
  });
});

describe("graceful shutdown", () => {
  test("on SIGTERM ends streams with UNAVAILABLE, announces nobody as gone, and exits 0", async ({ serve }) => {
    const broker = await serve();
    {
      const watcher = new Recorder(createSeqcastClient({ baseUrl: broker.url, token: testToken("walter") }).subscribe(["bye"], { backoff: { baseMs: 5_000, maxMs: 5_000 } }));
      const bob = new Recorder(
        createSeqcastClient({ baseUrl: broker.url, token: testToken("bob"), protocol: "connect", httpVersion: "1.1" }).subscribe(["bye"], {
          backoff: { baseMs: 5_000, maxMs: 5_000 },
        }),
      );
      await Promise.all([watcher.subscribedTo("bye"), bob.subscribedTo("bye")]);
      const probe = createSeqcastClient({ baseUrl: broker.url, token: testToken("probe") });
      await waitUntil(async () => (await probe.presence("bye")).sessionCount === 2, "both sessions present");
      broker.child.kill("SIGTERM");
      assert.equal(await exited(broker.child), 0, broker.output());
      for (const r of [watcher, bob]) {
        const change = r.ofType("state").find((e) => e.to === SubscriptionState.Reconnecting);
        assert.ok(change, `stream end seen (${r.summary()})`);
        assert.equal(change.error?.code, 14 /* UNAVAILABLE */, change.reason);
        assert.match(change.reason, /shutting down/);
      }
      // The sessions did not leave, the broker did (pubsub.proto, Subscribe: resubscribing clients rebuild from subscribed.present).
      const leaves = [...watcher.ofType("presence"), ...bob.ofType("presence")].filter((e) => e.kind === "leave");
      assert.deepEqual(leaves, [], "no presence leave during shutdown");
      await Promise.all([watcher.subscription.close(), bob.subscription.close()]);
    }
  });
});

describe("shutdown of an in-process broker", () => {
  test(
    "closes idle keep-alive and half-sent HTTP/1.1 connections instead of waiting for their timeouts",
    { timeout: 20_000 },
    async ({ broker, client }) => {
      // A Connect client over HTTP/1.1 keeps its socket alive after a call…
      const agent = new http.Agent({ keepAlive: true });
      const done = await new Promise<number>((resolve, reject) => {
        const req = http.request(
          `${broker.url}/seqcast.v1.PubSubService/GetPresence`,
          { method: "POST", agent, headers: { "content-type": "application/json", authorization: `Bearer ${testToken("kim")}` } },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("error", reject);
        req.end('{"room": "idle"}');
      });
      assert.equal(done, 200);
      const idle = Object.values(agent.freeSockets).flat()[0]!;
      const idleClosed = new Promise<void>((resolve) => idle.once("close", () => resolve()));
      // …and another client sends half a request and stops (Node would wait 60 s for the rest).
      const dripping = net.connect(broker.port, "127.0.0.1");
      await new Promise<void>((resolve) => dripping.once("connect", () => resolve()));
      dripping.write("POST /seqcast.v1.PubSubService/Publish HTTP/1.1\r\nHost: x\r\n");
      dripping.resume();
      const drippingClosed = new Promise<void>((resolve) => dripping.once("close", () => resolve()));
      await client("kim").publish("still-serving", "yes"); // an HTTP/2 session too
      // The test's timeout is what fails when close() waits for the clients' timeouts.
      await broker.close();
      await Promise.all([idleClosed, drippingClosed]);
      agent.destroy();
    },
  );
});

describe("expected errors: one line with a hint, no stack, exit 2", () => {
  /** Runs `bin/seqcast.js` to its end; never throws. */
  const seqcast = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ["bin/seqcast.js", ...args], { env: { ...process.env, SEQCAST_JWT_SECRET: "s", ...env } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("exit", (code) => resolve({ code, stdout, stderr }));
    });

  test("port in use, unusable data dir, unknown flags, dev login without a secret; and --version", async ({ serve }) => {
    const busy = await serve(["--engine", "memory"]);
    const file = `${busy.dataDir}/not-a-dir`;
    writeFileSync(file, "");
    const pem = `${busy.dataDir}/public.pem`;
    writeFileSync(pem, generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }));
    const cases: Array<[string[], NodeJS.ProcessEnv, string | RegExp]> = [
      [["serve", "--port", String(busy.port), "--engine", "memory"], {}, `seqcast serve: port ${busy.port} is in use; pick another with --port N`],
      [["serve", "--port", "0", "--data-dir", file], {}, `seqcast serve: cannot use the data directory ${file}: it is a file, not a directory; pick another with --data-dir DIR`],
      [["serve", "--port", "0", "--data-dir", `${file}/below`], {}, /^seqcast serve: cannot use the data directory .*: a file is in the way; pick another with --data-dir DIR$/],
      [["serve", "--bogus"], {}, "seqcast serve: unknown option --bogus; see 'seqcast serve --help'"],
      [["token", "--user", "x", "--ttl"], {}, "seqcast token: --ttl needs a value; see 'seqcast token --help'"],
      [["chat", "--user", "x", "extra"], {}, /^seqcast chat: unexpected argument 'extra'/],
      [["serve", "--port", "0", "--engine", "memory", "--dev-login", "--jwt-public-key", pem], { SEQCAST_JWT_SECRET: "" }, /^seqcast serve: --dev-login needs the HS256 secret/],
      [["frobnicate"], {}, /^seqcast: unknown command "frobnicate"; the commands are serve, chat, token/],
    ];
    const results = await Promise.all(cases.map(([args, env]) => seqcast(args, env)));
    results.forEach(({ code, stderr }, i) => {
      const [args, , expected] = cases[i]!;
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      const lines = stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, `one line: ${stderr}`);
      if (typeof expected === "string") assert.equal(lines[0], expected);
      else assert.match(lines[0]!, expected);
    });
    const version = await seqcast(["--version"]);
    assert.deepEqual([version.code, version.stdout.trim()], [0, `seqcast ${JSON.parse(readFileSync("package.json", "utf8")).version}`]);
  });
});
