import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { ReaderBacklog } from "../../src/broker/reader-backlog.js";

describe("ReaderBacklog: publishers wait for readers behind", () => {
  it("has nothing to wait for while every reader keeps up", () => {
    const backlog = new ReaderBacklog(20);
    assert.equal(backlog.wait(), undefined);
    const reader = { rooms: new Map() };
    backlog.fellBehind(reader);
    backlog.caughtUp(reader);
    assert.equal(backlog.wait(), undefined);
  });

  it("releases the waiting publishers once the last reader behind caught up", async () => {
    const backlog = new ReaderBacklog(60_000);
    const [a, b] = [{ rooms: new Map() }, { rooms: new Map() }];
    backlog.fellBehind(a);
    backlog.fellBehind(b);
    let released = 0;
    const waits = [backlog.wait()!, backlog.wait()!].map((p) => p.then(() => released++));
    backlog.caughtUp(a);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(released, 0, "b is still behind");
    backlog.caughtUp(b);
    await Promise.all(waits);
    assert.equal(released, 2);
    assert.equal(backlog.wait(), undefined);
  });

  it("a publisher waits only for the readers of the rooms it published to", async () => {
    const backlog = new ReaderBacklog(60_000);
    const [mine, other] = [{ rooms: new Map([["general", 1]]) }, { rooms: new Map([["sports", 1]]) }];
    backlog.fellBehind(other);
    assert.equal(backlog.waitForRooms([{ room: "general" }]), undefined, "the reader behind is in another room");
    backlog.fellBehind(mine);
    let released = false;
    const waiting = backlog.waitForRooms([{ room: "general" }, { room: "general" }])!.then(() => (released = true));
    backlog.caughtUp(mine);
    await waiting;
    assert.ok(released, "released although the other reader is still behind");
    assert.equal(backlog.size, 1);
    backlog.caughtUp(other);
  });

  it("stops waiting for a reader that took nothing for the stuck time, until it takes something again", async () => {
    const backlog = new ReaderBacklog(20);
    const stalled = { rooms: new Map() };
    backlog.fellBehind(stalled);
    await backlog.wait(); // resolves only because the reader is declared stuck
    assert.equal(backlog.size, 0);
    backlog.fellBehind(stalled);
    assert.equal(backlog.wait(), undefined, "a stuck reader is not waited for again");
    backlog.caughtUp(stalled);
    backlog.fellBehind(stalled);
    assert.ok(backlog.wait(), "once it read again, it counts again");
    backlog.caughtUp(stalled);
  });
});
