import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RunningServer } from "../../src/server/server.js";
import { clientFor, PROTOCOLS, Recorder, startBroker } from "./harness.js";

const grpc = PROTOCOLS[0];

describe("room patterns", () => {
  let server: RunningServer;
  const closers: Array<() => Promise<unknown>> = [];
  before(async () => {
    server = await startBroker({ publishRate: 0 });
  });
  after(async () => {
    await Promise.allSettled(closers.map((c) => c()));
    await server.close();
  });
  const watch = (user: string, rooms: string[], options = {}, claims = {}) => {
    const sub = clientFor(server.url, user, grpc, claims).subscribe(rooms, options);
    closers.push(() => sub.close());
    return new Recorder(sub);
  };

  it("sports.* delivers every matching room, including rooms created later, each in its own order", async () => {
    const pub = clientFor(server.url, "pub", grpc);
    await pub.publish("sports.football", "before the subscription");
    const one = watch("fan", ["sports.*"]);
    const any = watch("fanatic", ["sports.>"]);
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
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(one.messages().length, 4, "nothing from news, deeper rooms or an inbox");
    assert.ok(!any.messages().some((m) => m.room === "@fan" || m.room === "news"));
    assert.deepEqual(
      one.ofType("subscribed").map((s) => s.room).sort(),
      ["sports.*", "sports.football", "sports.tennis"],
    );
  });

  it("applies the token's read limits and the subscription's filter to matched rooms", async () => {
    const limited = watch("lim", ["teams.*"], {}, { subscribe: ["teams.red"] });
    const filtered = watch("filt", ["teams.*"], { filters: { "teams.*": `attributes.kind == "goal"` } });
    await Promise.all([limited.subscribedTo("teams.*"), filtered.subscribedTo("teams.*")]);
    const pub = clientFor(server.url, "pub", grpc);
    for (const team of ["red", "blue"])
      for (const kind of ["goal", "foul", "goal"]) await pub.publish(`teams.${team}`, `${team} ${kind}`, { attributes: { kind } });
    await limited.until((r) => r.messages().length === 3, "red's 3 messages");
    await filtered.until((r) => r.messages().length === 4, "the 4 goals");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(new Set(limited.messages().map((m) => m.room)), new Set(["teams.red"]));
    assert.deepEqual(filtered.contents("teams.red"), ["red goal", "red goal"]);
    assert.deepEqual(filtered.sequences("teams.blue"), [1, 3]);
    assert.equal(filtered.ofType("reset").length, 0);
  });

  it("stops delivering after Leave of the pattern", async () => {
    const rec = watch("quitter", ["feeds.*"]);
    await rec.subscribedTo("feeds.*");
    const pub = clientFor(server.url, "pub", grpc);
    await pub.publish("feeds.a", "one");
    await rec.until((r) => r.messages().length === 1, "first");
    await rec.subscription.leave("feeds.*");
    await pub.publish("feeds.a", "two");
    await pub.publish("feeds.b", "three");
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(rec.contents(), ["one"]);
  });

  it("rejects malformed patterns and positions on patterns", async () => {
    const c = clientFor(server.url, "bad", grpc);
    for (const [room, since] of [["a.>.b", undefined], ["sports.*", { epoch: "e", sequence: 1n }]] as const) {
      await assert.rejects(
        (async () => {
          for await (const _ of c.rpc.subscribe({ rooms: [{ room, since }] }, { headers: c.callHeaders })) break;
        })(),
        /invalid_argument|last segment|takes no position/,
      );
    }
  });
});
