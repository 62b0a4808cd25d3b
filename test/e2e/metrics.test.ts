import assert from "node:assert/strict";
import http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { createSeqcastClient } from "../../src/client/index.js";
import type { SubscribeEvent } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { clientFor, describe, PROTOCOLS, Recorder, test, testToken, waitUntil, type ServeProcess } from "../support/fixtures.js";

// `seqcast serve` as operators run it: /metrics scraped over HTTP/1.1 (fetch)
// and HTTP/2 on the broker's own port, and its log lines read from stdout.

const [grpc, connect] = [PROTOCOLS[0], PROTOCOLS[1]];

/** `name{labels}` → value, from the Prometheus text exposition format. */
function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

async function scrape(broker: ServeProcess): Promise<Map<string, number>> {
  const response = await fetch(`${broker.url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await response.text());
}

function scrapeH2(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const request = session.request({ ":path": "/metrics" });
    let body = "";
    let status = 0;
    request.on("response", (headers) => (status = Number(headers[":status"])));
    request.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
    request.on("end", () => {
      session.close();
      resolve({ status, body });
    });
    request.on("error", reject);
    request.end();
  });
}

const logLines = (broker: ServeProcess) =>
  broker
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown> & { level: number; msg: string });

describe("operations: /metrics and logs of seqcast serve", () => {
  test("counts publishes, deliveries, sessions and auth failures; logs them as JSON lines", async ({ serve }) => {
    const broker = await serve(["--log-level", "debug"]); // the default, durable sqlite engine
    const before = await scrape(broker);
    assert.equal(before.get('seqcast_deliveries_total{outcome="sent"}'), 0);
    assert.equal(before.get('seqcast_auth_failures_total{reason="TOKEN_EXPIRED"}'), 0);
    assert.ok((before.get("nodejs_heap_size_used_bytes") ?? 0) > 0, "heap");
    assert.ok(before.has("nodejs_eventloop_lag_seconds"), "event-loop lag");

    // Two subscribers, one per transport path (gRPC fast path on HTTP/2, Connect on HTTP/1.1).
    const subscribers = [new Recorder(clientFor(broker.url, "ann", grpc).subscribe(["ops"])), new Recorder(clientFor(broker.url, "bob", connect).subscribe(["ops"]))];
    await Promise.all(subscribers.map((s) => s.subscribedTo("ops")));
    const pub = clientFor(broker.url, "pub", grpc);
    const messages = 7;
    for (let i = 0; i < messages; i++) await pub.publish("ops", `m${i}`, { clientMessageId: `id-${i}` });
    await pub.publish("ops", "m0", { clientMessageId: "id-0" }); // a retry: a duplicate
    await assert.rejects(pub.publish("no spaces allowed", "x"), (e: unknown) => ConnectError.from(e).code === Code.InvalidArgument);
    await Promise.all(subscribers.map((s) => s.until((r) => r.messages("ops").length === messages, `${messages} messages`)));

    const live = await scrape(broker);
    assert.equal(live.get("seqcast_sessions"), 2);
    assert.equal(live.get("seqcast_rooms"), 1);
    assert.equal(live.get('seqcast_publishes_total{outcome="stored"}'), messages);
    assert.equal(live.get('seqcast_publishes_total{outcome="duplicate"}'), 1);
    assert.equal(live.get('seqcast_publishes_total{outcome="rejected"}'), 1);
    assert.equal(live.get('seqcast_deliveries_total{outcome="sent"}'), messages * subscribers.length);
    assert.equal(live.get("seqcast_publish_commit_seconds_count"), messages);
    assert.equal(live.get("seqcast_publish_write_seconds_count"), messages);
    assert.equal(live.get('seqcast_publish_write_seconds_bucket{le="+Inf"}'), messages);
    assert.ok((live.get("seqcast_streams") ?? 0) >= 2, "the two Subscribe streams are in flight");
    assert.ok((live.get('seqcast_connections{protocol="h2"}') ?? 0) >= 1);
    // The sqlite engine's keys in memory: its index of the stored ones (no history in memory).
    assert.equal(live.get("seqcast_idempotency_keys"), messages);
    assert.ok((live.get("seqcast_idempotency_key_bytes") ?? 0) > 0);
    assert.equal(live.get('seqcast_history_bytes{state="live"}'), undefined);

    // Refused tokens, by reason.
    const refused = async (token: string) => {
      const c = createSeqcastClient({ baseUrl: broker.url, token, protocol: "grpc", httpVersion: "2" });
      await assert.rejects(c.publish("ops", "x"), (e: unknown) => ConnectError.from(e).code === Code.Unauthenticated);
    };
    await refused("not-a-jwt");
    await refused(testToken("late", { expiresIn: -60 }));
    await refused(testToken("forger", { secret: "another-secret" }));
    const refusals = await scrape(broker);
    assert.equal(refusals.get('seqcast_auth_failures_total{reason="TOKEN_INVALID"}'), 2);
    assert.equal(refusals.get('seqcast_auth_failures_total{reason="TOKEN_EXPIRED"}'), 1);

    // The same metrics over HTTP/2 (prior knowledge), on the same port.
    const h2 = await scrapeH2(broker.url);
    assert.equal(h2.status, 200);
    assert.equal(parseMetrics(h2.body).get('seqcast_deliveries_total{outcome="sent"}'), messages * subscribers.length);

    await Promise.all(subscribers.map((s) => s.subscription.close()));
    await waitUntil(async () => (await scrape(broker)).get("seqcast_sessions") === 0, () => "sessions back to 0");

    // One JSON line per lifecycle event, expected conditions without stack traces.
    // The last lines may still be in the pipe from the broker when its scrape answered.
    const closed = (l: { msg: string; level: number }) => l.msg === "session closed" && l.level === 20;
    await waitUntil(() => logLines(broker).filter(closed).length === 2, () => `two "session closed" lines in\n${broker.output()}`);
    const lines = logLines(broker);
    const listening = lines.find((l) => l.msg === "seqcast listening")!;
    assert.equal(listening.level, 30);
    assert.equal(listening.metrics, `${broker.url}/metrics`);
    assert.equal(lines.filter((l) => l.msg === "session opened" && l.level === 20).length, 2);
    const authLines = lines.filter((l) => l.msg === "authentication failed");
    assert.deepEqual(authLines.map((l) => [l.level, l.reason]), [[30, "TOKEN_INVALID"], [30, "TOKEN_EXPIRED"], [30, "TOKEN_INVALID"]]);
    assert.ok(!broker.output().includes("stack"), broker.output());
  });

  test("counts and logs a slow consumer's cut-off and the messages it never got", async ({ serve }) => {
    const broker = await serve(["--engine", "memory", "--session-queue", "50", "--publish-rate", "0"]);
    const stalled = clientFor(broker.url, "stalled", grpc).rpc.subscribe({ rooms: [{ room: "firehose" }] })[Symbol.asyncIterator]();
    for (;;) {
      const { value } = await stalled.next();
      if (value?.events.some((e: SubscribeEvent) => e.event.case === "subscribed")) break;
    }
    // Then it stops reading: 3 MB later its queue is full.
    const pub = clientFor(broker.url, "pub", grpc);
    const body = "x".repeat(2048);
    await waitUntil(
      async () => {
        await pub.rpc.publishBatch({ messages: Array.from({ length: 500 }, () => ({ room: "firehose", content: body })) });
        return (await scrape(broker)).get("seqcast_slow_consumer_cutoffs_total") === 1;
      },
      () => "a cut-off",
      30_000,
    );
    const metrics = await scrape(broker);
    assert.ok((metrics.get('seqcast_deliveries_total{outcome="dropped"}') ?? 0) > 0, "its queued messages were dropped");
    await waitUntil(() => logLines(broker).some((l) => l.msg === "slow consumer cut off"), () => broker.output());
    const line = logLines(broker).find((l) => l.msg === "slow consumer cut off")!;
    assert.equal(line.level, 40);
    assert.equal(line.user, "stalled");
    assert.equal(line.reason, "SLOW_CONSUMER");
    assert.ok(!("err" in line) && !("stack" in line), JSON.stringify(line));
  });

  test("shows what the memory engine holds: retained messages' bytes and its idempotency keys", async ({ serve }) => {
    const broker = await serve(["--engine", "memory", "--history-size", "10"]);
    const empty = await scrape(broker);
    assert.equal(empty.get("seqcast_idempotency_keys"), 0);
    assert.equal(empty.get('seqcast_history_bytes{state="live"}'), 0);
    assert.equal(empty.get("seqcast_sqlite_transactions_total"), undefined, "no sqlite metrics for the memory engine");
    const pub = clientFor(broker.url, "pub", grpc);
    const body = "y".repeat(1000);
    const publish = (room: string, n: number) =>
      pub.rpc.publishBatch({ messages: Array.from({ length: n }, (_, i) => ({ room, content: body, clientMessageId: `${room}-${i}` })) });
    await publish("a", 30);
    const one = await scrape(broker);
    assert.equal(one.get("seqcast_idempotency_keys"), 30);
    assert.ok((one.get("seqcast_idempotency_key_bytes") ?? 0) > 0);
    const live = one.get('seqcast_history_bytes{state="live"}')!;
    // Room "a" retains its last 10 messages of 1,000 bytes each, and no more.
    assert.ok(live >= 10_000 && live < 20_000, `live ${live}`);
    assert.ok(one.get('seqcast_history_bytes{state="allocated"}')! >= live);
    await publish("b", 30);
    const two = await scrape(broker);
    assert.equal(two.get("seqcast_idempotency_keys"), 60);
    const both = two.get('seqcast_history_bytes{state="live"}')!;
    assert.ok(both >= 20_000 && both < 40_000, `live ${both}`);
  });

  test("shows what the sqlite engine's storage does: commits, its files, the checkpoint worker, the message log", async ({ serve }) => {
    const broker = await serve(["--history-size", "10"]); // the default, durable sqlite engine
    const empty = await scrape(broker);
    assert.equal(empty.get("seqcast_sqlite_committed_messages_total"), 0);
    assert.equal(empty.get('seqcast_sqlite_log_rows{state="retained"}'), 0);
    assert.ok(empty.get('seqcast_sqlite_file_bytes{file="database"}')! > 0, "the database file");
    assert.equal(empty.get("seqcast_sqlite_checkpoint_worker_up"), 1);
    const pub = clientFor(broker.url, "pub", grpc);
    const publish = (room: string, n: number) => pub.rpc.publishBatch({ messages: Array.from({ length: n }, (_, i) => ({ room, content: `${room}${i}` })) });
    await publish("a", 30);
    await publish("b", 5);
    const after = await scrape(broker);
    assert.equal(after.get("seqcast_sqlite_committed_messages_total"), 35);
    const transactions = after.get("seqcast_sqlite_transactions_total")!;
    assert.ok(transactions >= 2 && transactions < 35, `two batches in ${transactions} group commits`);
    // Room "a" keeps its last 10, room "b" its 5; the 20 rows "a" no longer keeps wait for the sweep.
    assert.equal(after.get('seqcast_sqlite_log_rows{state="retained"}'), 15);
    const unswept = after.get('seqcast_sqlite_log_rows{state="unswept"}')!;
    assert.ok(unswept >= 15 && unswept <= 35, `unswept ${unswept}`);
    assert.ok(after.get('seqcast_sqlite_file_bytes{file="wal"}')! > 0, "the commits went to the WAL");
    // The worker passes once a second by default.
    await waitUntil(async () => ((await scrape(broker)).get("seqcast_sqlite_checkpoint_passes_total") ?? 0) >= 1, () => "a checkpoint pass");
  });

  test("--metrics off serves no /metrics", async ({ serve }) => {
    const broker = await serve(["--engine", "memory", "--metrics", "off"]);
    assert.equal((await fetch(`${broker.url}/metrics`)).status, 404);
    assert.ok(!("metrics" in logLines(broker).find((l) => l.msg === "seqcast listening")!));
  });
});
