import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/es/google/rpc/error_details_pb.js";
import type { SeqcastClient } from "../../src/client/index.js";
import { clientFor } from "../support/broker.js";
import { assertServed, rssOf, startCanary, type CanaryReport } from "../support/canary.js";
import { spawnServe, exited, type ServeProcess } from "../support/processes.js";
import { waitUntil } from "../support/wait.js";
import type { AttackPlan, AttackResult } from "./filter-attacker.js";

/**
 * Issue 10 §1, "filters cannot be a denial of service": the hostile
 * CEL filters sent over the wire to a spawned broker are refused before they
 * run (INVALID_ARGUMENT, ErrorInfo INVALID_FILTER naming the limit), while a
 * canary keeps being served. Before the fix, the depth-30 comprehension
 * pinned the loop for good, `content == "" || <depth 7>` cost ~1 s per
 * published message, matches() in exists over large contents blocked
 * GetHistory for 8.7 s, and 3,500 rooms with 1 KiB filters blocked it 2.2 s.
 *
 * The broker allows 8 nested comprehensions (default 2), so that the cost
 * estimate, not the nesting limit, is what refuses depth 7.
 */

const TEN = "[0,1,2,3,4,5,6,7,8,9]";
const nested = (depth: number) => {
  let body = "true";
  for (let i = 0; i < depth; i++) body = `${TEN}.all(a${i}, ${body})`;
  return body;
};
const MiB = 1024 * 1024;

interface Refusal {
  code: Code;
  reason: string | undefined;
  metadata: Record<string, string>;
  message: string;
}

async function refusalOf(call: Promise<unknown>): Promise<Refusal> {
  try {
    await call;
  } catch (error) {
    const e = ConnectError.from(error);
    const info = e.findDetails(ErrorInfoSchema)[0];
    return { code: e.code, reason: info?.reason, metadata: info?.metadata ?? {}, message: e.rawMessage };
  }
  assert.fail("expected the call to be refused");
}

/** The first event (or the error) of a raw Subscribe stream, bounded in time. */
const subscribeOnce = (c: SeqcastClient, rooms: Array<{ room: string; filter?: string }>) =>
  (async () => {
    for await (const _ of c.rpc.subscribe({ rooms }, { timeoutMs: 20_000 })) break;
  })();

/**
 * Runs the plan in an attacker process (filter-attacker.ts) while a canary
 * measures the broker; bounded: the attacker is killed after ms + 30 s.
 */
async function attack(url: string, plan: AttackPlan): Promise<{ result: AttackResult; report: CanaryReport }> {
  // The canary (and its calm baseline) first: started after the attacker, its
  // start-up on a loaded machine could eat most of the attack's window.
  const canary = await startCanary(url);
  const child = spawn(process.execPath, ["--import", "tsx", "test/hostile/filter-attacker.ts", url], { stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  child.stdin.end(JSON.stringify(plan));
  const killer = setTimeout(() => child.kill("SIGKILL"), plan.ms + 30_000);
  const done = exited(child);
  await waitUntil(() => output.includes("attacking") || child.exitCode !== null, () => `the attacker to start: ${output}`, 30_000);
  // What counts is what the canary saw while the attack ran.
  await canary.reset();
  const code = await done;
  clearTimeout(killer);
  const report = await canary.stop();
  assert.equal(code, 0, `attacker: ${output}`);
  return { result: JSON.parse(output.trim().split("\n").at(-1)!) as AttackResult, report };
}


describe("hostile CEL filters", () => {
  let serve: ServeProcess;
  let attacker: SeqcastClient;

  beforeAll(async () => {
    serve = await spawnServe(["--engine", "memory", "--filter-max-nesting", "8", "--publish-rate", "0"]);
    attacker = clientFor(serve.url, "mallory");
    // For the log: what the canary sees on this machine with no attack at all.
    const canary = await startCanary(serve.url);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    console.log(`canary without an attack: ${JSON.stringify(await canary.stop())}`);
  });
  afterAll(async () => {
    serve.child.kill("SIGKILL");
    await exited(serve.child);
  });

  it("refuses the 30-deep nested comprehension on Subscribe and GetHistory, again and again", async () => {
    const filter = nested(30);
    assert.ok(filter.length < 1024, "under 1 KiB, as in the issue");
    const { result, report } = await attack(serve.url, {
      ms: 3000,
      pauseMs: 5,
      requests: [
        { kind: "subscribe", rooms: [{ room: "deep", filter }] },
        { kind: "history", room: "deep", filter },
      ],
    });
    const keys = Object.keys(result.outcomes).sort();
    assert.deepEqual(keys, ["InvalidArgument INVALID_FILTER filter-max-nesting filter", "InvalidArgument INVALID_FILTER filter-max-nesting rooms[0].filter"], JSON.stringify(result));
    assert.ok(Object.values(result.outcomes).reduce((a, b) => a + b) > 10, JSON.stringify(result.outcomes));
    assert.match(result.samples[keys[0]!]!, /--filter-max-nesting/);
    assertServed(report, "nested comprehensions");
  });

  it("refuses `content == \"\" || <depth 7>` by its worst-case cost, and publishing goes on", async () => {
    const filter = `content == "" || ${nested(7)}`;
    const canary = await startCanary(serve.url);
    const subscription = await refusalOf(subscribeOnce(attacker, [{ room: "cheap-looking", filter }]));
    const history = await refusalOf(attacker.rpc.getHistory({ room: "cheap-looking", filter }, { timeoutMs: 20_000 }));
    for (const r of [subscription, history]) {
      assert.equal(r.code, Code.InvalidArgument, r.message);
      assert.deepEqual([r.reason, r.metadata.limit, r.metadata.max], ["INVALID_FILTER", "filter-max-cost", "10000"], r.message);
    }
    assert.equal(subscription.metadata.field, "rooms[0].filter");
    assert.equal(history.metadata.field, "filter");
    // No subscription carries it: publishing to the room costs what it always does.
    const publisher = clientFor(serve.url, "trent");
    for (let i = 0; i < 50; i++) await publisher.publish("cheap-looking", `m${i}`);
    assertServed(await canary.stop(), "content == '' || depth 7");
  });

  it("refuses matches() inside exists over large contents in GetHistory; an accepted filter over them keeps the loop free", async () => {
    const room = "large";
    const publisher = clientFor(serve.url, "trent");
    const big = (i: number) => `${"ab".repeat(30 * 1024)}${i % 10 === 0 ? " needle" : ""}`;
    for (let i = 0; i < 100; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => publisher.publish(room, big(i + j))));
    const hostile = `${TEN}.exists(a, content.matches("[a-z]+[0-9]"))`;
    const { result, report } = await attack(serve.url, {
      ms: 3000,
      pauseMs: 5,
      requests: [
        // The most a client may ask of filtered history: every message of the room, evaluated.
        { kind: "history", room, filter: `content.endsWith("needle") && size(content) > 100`, limit: 1000 },
        { kind: "history", room, filter: hostile },
      ],
    });
    assert.deepEqual(Object.keys(result.outcomes), ["InvalidArgument INVALID_FILTER filter-max-cost filter"], JSON.stringify(result));
    assert.ok(result.pages.length > 0 && result.pages.every((n) => n === 10), `pages of the accepted filter: ${result.pages.join(",")}`);
    assertServed(report, "matches() in exists over large contents");
  });

  it("bounds every evaluation on the live path: subscriptions with the costliest kind of accepted filter, 60 KiB publishes", async () => {
    // Accepted (about 3,600 of the 10,000 units), every part evaluated on every message: a copy of the
    // content as bytes, concatenated, a size() over it and 100 iterations of a nested comprehension.
    const filter = `bytes(content) + bytes(content) == b"" || size(content) == 3 || ${TEN}.exists(a, ${TEN}.exists(b, a + b > 100))`;
    const rooms = [{ room: "busy", filter }];
    const { result, report } = await attack(serve.url, {
      ms: 3000,
      pauseMs: 20,
      requests: [...Array.from({ length: 5 }, () => ({ kind: "hold" as const, rooms })), { kind: "publish", room: "busy", bytes: 60 * 1024 }],
    });
    assert.deepEqual(Object.keys(result.outcomes).sort(), ["held", "published"], JSON.stringify(result));
    assert.equal(result.outcomes.held, 5);
    assert.ok(result.outcomes.published! > 5, `published ${result.outcomes.published}`);
    assertServed(report, "costly accepted filters on the live path");
  });

  it("bounds the filters of one request: 3,500 rooms with 1 KiB filters, and 50 rooms with distinct ones", async () => {
    const kib = (i: number) => {
      const head = `content != "${i}-`;
      return `${head}${"x".repeat(1024 - head.length - 1)}"`;
    };
    assert.equal(Buffer.byteLength(kib(3499)), 1024);
    const rooms = Array.from({ length: 3500 }, (_, i) => ({ room: `many.r${i}`, filter: kib(i) }));
    const rssBefore = rssOf(serve.child.pid!);
    const { result, report } = await attack(serve.url, {
      ms: 3000,
      pauseMs: 5,
      requests: [
        { kind: "subscribe", rooms },
        { kind: "subscribe", rooms: rooms.slice(0, 50) },
      ],
    });
    const rssAfter = rssOf(serve.child.pid!);
    assert.deepEqual(
      Object.keys(result.outcomes).sort(),
      // 3,500 filtered rooms are more bytes than the most rooms a session may hold can take: dropped unread.
      ["InvalidArgument INVALID_FILTER filter-max-request-bytes rooms", "ResourceExhausted REQUEST_TOO_LARGE - -"],
      JSON.stringify(result.outcomes),
    );
    const grown = `broker RSS ${(rssBefore / MiB).toFixed(0)} → ${(rssAfter / MiB).toFixed(0)} MiB over ${JSON.stringify(result.outcomes)}`;
    console.log(grown);
    assert.ok(rssAfter - rssBefore < 100 * MiB, grown);
    assertServed(report, "many filters in one request");
  });
});
