import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { test, describe, PROTOCOLS, clientFor, Recorder, startCuttableProxy } from "../support/fixtures.js";

const grpc = PROTOCOLS[0];

describe("content-based routing (CEL filters in the broker)", () => {
  test.override({ brokerConfig: { historySize: 10_000, publishRate: 0 } });

  test("delivers the matching 10% in order with no stall while 90% are filtered out", async ({ client, cleanup }) => {
    const room = "orders";
    const sub = client("filtered", grpc).subscribe([room], {
      filters: { [room]: "int(attributes.n) % 10 == 0" },
      // A reorder buffer waiting for filtered sequences would need a gap fill:
      // make that take longer than the test, so only watermarks can pass.
      gapFillDelayMs: 600_000,
    });
    cleanup(() => sub.close());
    const rec = new Recorder(sub);
    await rec.subscribedTo(room);
    const pub = client("shop", grpc);
    for (let batch = 0; batch < 10; batch++)
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => pub.publish(room, `order ${batch * 50 + i + 1}`, { attributes: { n: String(batch * 50 + i + 1) } })),
      );
    await rec.until((r) => r.messages(room).length === 50, "the 50 matching orders", 20_000);
    assert.deepEqual(rec.contents(room), Array.from({ length: 50 }, (_, i) => `order ${(i + 1) * 10}`));
    assert.deepEqual(rec.sequences(room), Array.from({ length: 50 }, (_, i) => (i + 1) * 10), "broker sequences kept");
    assert.equal(rec.ofType("reset").length, 0, "filtered is not lost");
  });

  test("rejects a bad filter with INVALID_ARGUMENT saying where", async ({ client }) => {
    const c = client("typo", grpc);
    const attempt = async (filter: string) => {
      try {
        for await (const _ of c.rpc.subscribe({ rooms: [{ room: "x", filter }] })) break;
      } catch (error) {
        return ConnectError.from(error);
      }
      assert.fail("expected an error");
    };
    const syntax = await attempt(`attributes.type ==`);
    assert.equal(syntax.code, Code.InvalidArgument);
    assert.match(syntax.rawMessage, /rooms\[0\]\.filter: at 1:\d+/);
    const unknown = await attempt(`price > 100`);
    assert.equal(unknown.code, Code.InvalidArgument);
    assert.match(unknown.rawMessage, /unknown variable/);
    const history = await c.history("x", { filter: "((" }).catch((e) => ConnectError.from(e));
    assert.equal((history as ConnectError).code, Code.InvalidArgument);
  });

  test("treats evaluation errors as not delivered, counts them, and keeps the stream going", async ({ broker, client, cleanup }) => {
    const room = "values";
    const rec = new Recorder(client("val", grpc).subscribe([room], { filters: { [room]: "int(attributes.value) > 100" } }));
    cleanup(() => rec.subscription.close());
    await rec.subscribedTo(room);
    const before = broker.broker.stats.filterErrors;
    const pub = client("pub", grpc);
    await pub.publish(room, "missing value");
    await pub.publish(room, "not a number", { attributes: { value: "abc" } });
    await pub.publish(room, "small", { attributes: { value: "5" } });
    await pub.publish(room, "big", { attributes: { value: "500" } });
    await rec.until((r) => r.messages(room).length === 1, "the matching message");
    assert.deepEqual(rec.contents(room), ["big"]);
    assert.equal(broker.broker.stats.filterErrors - before, 2);
  });

  test("filters history, and a resumed filtered subscription replays only matches, without a hole", async ({ broker, client, cleanup }) => {
    const room = "resume.filtered";
    const proxy = await startCuttableProxy(broker.port);
    cleanup(() => proxy.close());
    const filter = `attributes.kind == "keep"`;
    const sub = clientFor(proxy.url, "rf", grpc).subscribe([room], { filters: { [room]: filter }, backoff: { baseMs: 10, maxMs: 50 } });
    cleanup(() => sub.close());
    const rec = new Recorder(sub);
    await rec.subscribedTo(room);
    const pub = client("pub", grpc);
    const publish = (i: number) => pub.publish(room, `m${i}`, { attributes: { kind: i % 3 === 0 ? "keep" : "drop" } });
    for (let i = 1; i <= 9; i++) await publish(i);
    await rec.until((r) => r.messages(room).length === 3, "m3, m6, m9");
    proxy.blocked = true;
    proxy.cut();
    for (let i = 10; i <= 30; i++) await publish(i);
    proxy.blocked = false;
    await rec.until((r) => r.messages(room).length === 10, "every kept message", 20_000);
    assert.deepEqual(rec.contents(room), Array.from({ length: 10 }, (_, i) => `m${(i + 1) * 3}`));
    assert.equal(rec.ofType("reset").length, 0);
    const page = await pub.history(room, { filter, limit: 4 });
    assert.deepEqual(page.messages.map((m) => m.content), ["m3", "m6", "m9", "m12"]);
    assert.equal(page.hasMore, true);
    const last = await pub.history(room, { filter, limit: 2, direction: "backward" });
    assert.deepEqual(last.messages.map((m) => m.content), ["m27", "m30"]);
  });
});
