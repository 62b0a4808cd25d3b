import assert from "node:assert/strict";
import { describe, it } from "vitest";
import type { Position, RoomEvent, StoredMessage } from "../../src/engine/engine.js";
import type { ChannelEvent } from "../../src/engine/redis-codec.js";
import { RoomFeeds } from "../../src/engine/redis-feed.js";

/**
 * RoomFeeds, the Redis engine's ordered delivery, against a scripted stream:
 * the holes, duplicates, lost connections and replaced lineages that real
 * pub/sub produces only by accident.
 */
const message = (sequence: number, epoch = "e1"): StoredMessage => ({
  id: `${epoch}-${sequence}`,
  room: "r",
  epoch,
  sequence: BigInt(sequence),
  sender: "s",
  content: `${epoch}#${sequence}`,
  payload: new Uint8Array(0),
  attributes: {},
  timeMs: 0,
  clientMessageId: "",
});
const m = (sequence: number, epoch = "e1"): ChannelEvent => ({ type: "message", message: message(sequence, epoch) });
const presence = (user: string): ChannelEvent => ({
  type: "presence",
  kind: "join",
  entry: { user, sessionId: user, device: "d", state: "online", joinedAtMs: 0, sinceMs: 0, lastActiveMs: 0 },
});

/** A room's stream as the feed reads it, and what the listener got. */
function harness() {
  const stream = { epoch: "e1", messages: [] as StoredMessage[], failing: false, gate: Promise.resolve() };
  const reads: Array<[string, bigint, bigint | undefined]> = [];
  const delivered: string[] = [];
  const watched = new Set(["r"]);
  const feeds = new RoomFeeds({
    read: async (_room, epoch, after, until) => {
      reads.push([epoch, after, until]);
      // Redis answers what the room held when the script ran; the reply comes later.
      const failing = stream.failing;
      const position: Position = { epoch: stream.epoch, sequence: BigInt(stream.messages.length) };
      const from = epoch === stream.epoch ? after : 0n;
      const to = epoch === stream.epoch && until !== undefined ? until : position.sequence;
      const messages = stream.messages.filter((x) => x.sequence > from && x.sequence <= to);
      await stream.gate;
      if (failing) throw new Error("redis unreachable");
      return { position, messages };
    },
    emit: (_room, event: RoomEvent) =>
      delivered.push(
        event.type === "message" ? event.message.content : event.type === "reset" ? `reset:${event.position.epoch}` : `presence:${event.entry.user}`,
      ),
    watched: (room) => watched.has(room),
  });
  const publish = (count: number) => {
    for (let i = 0; i < count; i++) stream.messages.push(message(stream.messages.length + 1, stream.epoch));
  };
  return { stream, reads, delivered, feeds, watched, publish };
}
const settled = () => new Promise((r) => setTimeout(r, 5));

describe("RoomFeeds: per-room order over pub/sub", () => {
  it("starts at the room's position once subscribed, holding back what arrives meanwhile", async () => {
    const h = harness();
    h.publish(3);
    let subscribed!: () => void;
    const started = h.feeds.start("r", new Promise<void>((r) => (subscribed = r)));
    h.feeds.receive("r", m(3)); // arrives before the starting read, which covers it: not owed
    let answer!: () => void;
    h.stream.gate = new Promise<void>((r) => (answer = r));
    subscribed();
    await settled(); // the read ran in Redis; its answer is on the way
    h.publish(1);
    h.feeds.receive("r", m(4)); // published after the read: held until it answers, then delivered
    answer();
    await started;
    h.publish(1);
    h.feeds.receive("r", m(5));
    await settled();
    assert.deepEqual(h.delivered, ["e1#4", "e1#5"]);
  });

  it("drops duplicates and fills a hole from the stream, keeping presence in channel order", async () => {
    const h = harness();
    await h.feeds.start("r", Promise.resolve());
    h.publish(4);
    h.feeds.receive("r", m(1));
    h.feeds.receive("r", m(1));
    h.feeds.receive("r", m(3)); // 2 was lost
    h.feeds.receive("r", presence("ann"));
    h.feeds.receive("r", m(4));
    await settled();
    assert.deepEqual(h.delivered, ["e1#1", "e1#2", "e1#3", "presence:ann", "e1#4"]);
    assert.deepEqual(h.reads.at(-1), ["e1", 1n, 2n], "the hole only, through 2");
  });

  it("resets to a new lineage before its first message, and ignores late events of the old one", async () => {
    const h = harness();
    await h.feeds.start("r", Promise.resolve());
    h.publish(2);
    h.feeds.receive("r", m(1));
    h.feeds.receive("r", m(2));
    h.stream.epoch = "e2";
    h.stream.messages = [];
    h.publish(2);
    h.feeds.receive("r", m(2, "e2")); // 1 of e2 was lost too
    await settled();
    h.feeds.receive("r", m(2)); // a straggler of e1
    h.feeds.receive("r", { type: "reset", epoch: "e1" });
    h.feeds.receive("r", { type: "reset", epoch: "e2" }); // already there
    await settled();
    assert.deepEqual(h.delivered, ["e1#1", "e1#2", "reset:e2", "e2#1", "e2#2"]);
  });

  it("after a cut: catches up from the stream when Redis is back, and retries a failed catch-up", async () => {
    const h = harness();
    await h.feeds.start("r", Promise.resolve());
    h.publish(1);
    h.feeds.receive("r", m(1));
    h.publish(2); // published while this node's subscription was down
    h.stream.failing = true;
    h.feeds.resyncAll();
    await settled();
    assert.deepEqual(h.delivered, ["e1#1"]);
    h.feeds.receive("r", presence("bob")); // held: the feed is stale
    h.stream.failing = false;
    h.feeds.resyncAll();
    await settled();
    h.publish(1);
    h.feeds.receive("r", m(3)); // already read from the stream
    h.feeds.receive("r", m(4));
    await settled();
    assert.deepEqual(h.delivered, ["e1#1", "e1#2", "e1#3", "presence:bob", "e1#4"]);
  });

  it("waits for the new lineage when the room vanished from Redis (its data was lost)", async () => {
    const h = harness();
    await h.feeds.start("r", Promise.resolve());
    h.publish(1);
    h.feeds.receive("r", m(1));
    h.stream.epoch = "";
    h.stream.messages = [];
    h.feeds.resyncAll();
    await settled();
    assert.deepEqual(h.delivered, ["e1#1"], "no reset to an empty epoch");
    h.stream.epoch = "e9";
    h.publish(1);
    h.feeds.receive("r", m(1, "e9"));
    await settled();
    assert.deepEqual(h.delivered, ["e1#1", "reset:e9", "e9#1"]);
  });

  it("follows a pattern-matched room from its first event, and forgets rooms no longer watched", async () => {
    const h = harness();
    h.publish(5);
    h.feeds.receive("r", presence("cy")); // no feed yet: passed through
    h.feeds.receive("r", m(5));
    h.feeds.receive("r", m(6));
    h.watched.delete("r");
    h.feeds.prune();
    h.feeds.receive("r", m(7));
    await settled();
    assert.deepEqual(h.delivered, ["presence:cy", "e1#5", "e1#6"]);
  });

  it("fails a start whose subscription failed, and starts afresh on the next watch", async () => {
    const h = harness();
    await assert.rejects(h.feeds.start("r", Promise.reject(new Error("subscribe failed"))), /subscribe failed/);
    h.publish(2);
    await h.feeds.start("r", Promise.resolve());
    h.publish(1);
    h.feeds.receive("r", m(3));
    await settled();
    assert.deepEqual(h.delivered, ["e1#3"]);
  });
});
