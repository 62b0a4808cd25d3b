import assert from "node:assert/strict";
import { test, describe, PROTOCOLS, pause } from "../support/fixtures.js";

const grpc = PROTOCOLS[0];

describe("room patterns", () => {
  test.override({ brokerConfig: { publishRate: 0 } });

  test("sports.* delivers every matching room, including rooms created later, each in its own order", async ({ client, subscribe }) => {
    const pub = client("pub", grpc);
    await pub.publish("sports.football", "before the subscription");
    const one = subscribe("fan", ["sports.*"], grpc);
    const any = subscribe("fanatic", ["sports.>"], grpc);
    await Promise.all([one.subscribedTo("sports.*"), any.subscribedTo("sports.>")]);
    await pub.publish("sports.football", "goal");
    await pub.publish("sports.tennis", "ace"); // a room that did not exist yet
    await pub.publish("sports.football.uk", "deep");
    await pub.publish("news", "elsewhere");
    await pub.publish("@fan", "private");
    await pub.publish("sports.football", "offside");
    await pub.publish("sports.tennis", "let");
    await one.until((r) => r.messages().length === 4, "4 messages through sports.*");
    await any.until((r) => r.messages().length === 5, "5 messages through sports.>");
    assert.deepEqual(one.contents("sports.football"), ["goal", "offside"]);
    assert.deepEqual(one.sequences("sports.football"), [2, 3]);
    assert.deepEqual(one.contents("sports.tennis"), ["ace", "let"]);
    assert.deepEqual(one.sequences("sports.tennis"), [1, 2]);
    assert.deepEqual(any.contents("sports.football.uk"), ["deep"]);
    await pause(100);
    assert.equal(one.messages().length, 4, "nothing from news, deeper rooms or an inbox");
    assert.ok(!any.messages().some((m) => m.room === "@fan" || m.room === "news"));
    assert.deepEqual(
      one.ofType("subscribed").map((s) => s.room).sort(),
      ["sports.*", "sports.football", "sports.tennis"],
    );
  });

  test("applies the token's read limits and the subscription's filter to matched rooms", async ({ client, subscribe }) => {
    const limited = subscribe("lim", ["teams.*"], grpc, { claims: { subscribe: ["teams.red"] } });
    const filtered = subscribe("filt", ["teams.*"], grpc, { filters: { "teams.*": `attributes.kind == "goal"` } });
    await Promise.all([limited.subscribedTo("teams.*"), filtered.subscribedTo("teams.*")]);
    const pub = client("pub", grpc);
    for (const team of ["red", "blue"])
      for (const kind of ["goal", "foul", "goal"]) await pub.publish(`teams.${team}`, `${team} ${kind}`, { attributes: { kind } });
    await limited.until((r) => r.messages().length === 3, "red's 3 messages");
    await filtered.until((r) => r.messages().length === 4, "the 4 goals");
    await pause(100);
    assert.deepEqual(new Set(limited.messages().map((m) => m.room)), new Set(["teams.red"]));
    assert.deepEqual(filtered.contents("teams.red"), ["red goal", "red goal"]);
    assert.deepEqual(filtered.sequences("teams.blue"), [1, 3]);
    assert.equal(filtered.ofType("reset").length, 0);
  });

  test("stops delivering after Leave of the pattern", async ({ client, subscribe }) => {
    const rec = subscribe("quitter", ["feeds.*"], grpc);
    await rec.subscribedTo("feeds.*");
    const pub = client("pub", grpc);
    await pub.publish("feeds.a", "one");
    await rec.until((r) => r.messages().length === 1, "first");
    await rec.subscription.leave("feeds.*");
    await pub.publish("feeds.a", "two");
    await pub.publish("feeds.b", "three");
    await pause(150);
    assert.deepEqual(rec.contents(), ["one"]);
  });

  test("rejects malformed patterns and positions on patterns", async ({ client }) => {
    const c = client("bad", grpc);
    for (const [room, since] of [["a.>.b", undefined], ["sports.*", { epoch: "e", sequence: 1n }]] as const) {
      await assert.rejects(
        (async () => {
          for await (const _ of c.rpc.subscribe({ rooms: [{ room, since }] })) break;
        })(),
        /invalid_argument|last segment|takes no position/,
      );
    }
  });
});
