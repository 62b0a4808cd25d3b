import assert from "node:assert/strict";
import { beforeEach, describe, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import { createSeqcastClient } from "../../src/client/index.js";
import { SubscriptionState, type SubscriptionEvent, type SubscriptionOptions } from "../../src/client/subscription.js";
import {
  HistoryDirection,
  PresenceEventKind,
  PubSubService,
  SubscribeEventSchema,
  type SubscribeEvent,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { MessageSchema, PresenceEntrySchema, PresenceState, type Message } from "../../gen/es/seqcast/v1/types_pb.js";
import { testToken } from "../support/tokens.js";
import { waitUntil } from "../support/wait.js";

/**
 * The SDK against an in-process fake broker whose streams the test scripts
 * event by event: deterministic holes, epoch changes and stream failures
 * that a real broker would only produce by accident.
 */
type Step = SubscribeEvent | ConnectError;

class FakeBroker {
  /** One script per Subscribe call, consumed in order. */
  scripts: Step[][] = [];
  requests: SubscribeRequest[] = [];
  history: Message[] = [];
  historyEpoch = "e1";
  firstSequence = 1n;
  /** GetHistory answers once this settles (a slow history read). */
  historyGate: Promise<void> = Promise.resolve();
  private waiters: Array<() => void> = [];
  /** Steps pushed while a stream is open. */
  live: Step[] = [];

  push(step: Step) {
    this.live.push(step);
    this.waiters.splice(0).forEach((w) => w());
  }

  routes = (router: ConnectRouter) => {
    const fake = this;
    router.service(PubSubService, {
      async *subscribe(request): AsyncGenerator<SubscribeResponse> {
        fake.requests.push(request);
        const script = fake.scripts.shift() ?? [];
        fake.live = script;
        for (;;) {
          const step = fake.live.shift();
          if (!step) {
            await new Promise<void>((r) => fake.waiters.push(r));
            continue;
          }
          if (step instanceof ConnectError) throw step;
          yield { $typeName: "seqcast.v1.SubscribeResponse", events: [step] };
        }
      },
      async getHistory(request) {
        await fake.historyGate;
        const all = fake.history.filter(
          (m) =>
            m.sequence > request.afterSequence &&
            (request.beforeSequence === 0n || m.sequence < request.beforeSequence) &&
            m.sequence >= fake.firstSequence,
        );
        const limit = request.limit || 100;
        const messages = request.direction === HistoryDirection.BACKWARD ? all.slice(-limit) : all.slice(0, limit);
        return {
          messages,
          position: { epoch: fake.historyEpoch, sequence: fake.history.at(-1)?.sequence ?? 0n },
          firstSequence: fake.firstSequence,
          hasMore: false,
        };
      },
    });
  };
}

const started = (id = "s1") =>
  create(SubscribeEventSchema, { event: { case: "sessionStarted", value: { sessionId: id, user: "u", heartbeatIntervalMs: 0 } } });
const entry = (user: string, session: string, state = PresenceState.ONLINE) => create(PresenceEntrySchema, { user, sessionId: session, state });
const subscribed = (epoch: string, sequence: bigint, recovered = false, present: string[] = []) =>
  create(SubscribeEventSchema, {
    event: { case: "subscribed", value: { room: "r", position: { epoch, sequence }, recovered, present: present.map((u) => entry(u, `${u}-1`)) } },
  });
const presence = (kind: PresenceEventKind, user: string, state = PresenceState.ONLINE) =>
  create(SubscribeEventSchema, { event: { case: "presence", value: { room: "r", kind, entry: entry(user, `${user}-1`, state) } } });
const msg = (sequence: number, epoch = "e1") => create(MessageSchema, { room: "r", epoch, sequence: BigInt(sequence), content: `m${sequence}` });
const message = (sequence: number, epoch = "e1") =>
  create(SubscribeEventSchema, { event: { case: "message", value: msg(sequence, epoch) } });

describe("Subscription against a scripted broker", () => {
  const fake = new FakeBroker();
  // In memory: the Connect router runs in this process, no socket involved.
  const transport = createRouterTransport(fake.routes);
  beforeEach(() => {
    Object.assign(fake, { scripts: [], requests: [], history: [], historyEpoch: "e1", firstSequence: 1n });
  });

  function open(options: SubscriptionOptions = {}) {
    const sub = createSeqcastClient({ baseUrl: "http://in-memory", token: testToken("u"), transport }).subscribe(["r"], {
      gapFillDelayMs: 20,
      backoff: { baseMs: 5, maxMs: 20 },
      ...options,
    });
    const events: SubscriptionEvent[] = [];
    sub.on((e) => events.push(e));
    const delivered = () => events.flatMap((e) => (e.type === "message" ? [e.message.content] : e.type === "reset" ? [`reset:${e.reason}:${e.skipped}`] : []));
    return { sub, events, delivered };
  }

  it("fills a hole on the stream from history after the gap delay", async () => {
    fake.history = [msg(1), msg(2), msg(3)];
    fake.scripts = [[started(), subscribed("e1", 0n), message(1), message(3)]];
    const { sub, delivered } = open();
    await waitUntil(() => delivered().length === 3, "three deliveries");
    assert.deepEqual(delivered(), ["m1", "m2", "m3"]);
    await sub.close();
  });

  it("reports loss when the hole is no longer in history, then carries on", async () => {
    fake.history = [msg(4), msg(5)];
    fake.firstSequence = 4n;
    fake.scripts = [[started(), subscribed("e1", 0n), message(1), message(5)]];
    const { sub, delivered } = open();
    await waitUntil(() => delivered().length === 4, "deliveries");
    assert.deepEqual(delivered(), ["m1", "reset:lost:2", "m4", "m5"]);
    await sub.close();
  });

  it("emits a reset instead of mixing lineages when the epoch changes", async () => {
    fake.scripts = [[started(), subscribed("e1", 0n), message(1), message(2), message(1, "e2")]];
    const { sub, delivered } = open();
    await waitUntil(() => delivered().length === 4, "deliveries");
    assert.deepEqual(delivered(), ["m1", "m2", "reset:epoch_changed:0", "m1"]);
    await sub.close();
  });

  it("reconnects after a dropped stream and resumes from the last delivered position", async () => {
    fake.scripts = [
      [started("s1"), subscribed("e1", 0n), message(1), message(2), new ConnectError("gone", Code.Unavailable)],
      [started("s2"), subscribed("e1", 2n, true), message(3)],
    ];
    const { sub, events, delivered } = open();
    await waitUntil(() => delivered().length === 3, "deliveries");
    assert.deepEqual(delivered(), ["m1", "m2", "m3"]);
    assert.deepEqual(fake.requests[1]!.rooms.map((r) => [r.room, r.since?.epoch, r.since?.sequence]), [["r", "e1", 2n]]);
    assert.deepEqual(
      events.flatMap((e) => (e.type === "state" ? [`${e.from}->${e.to}`] : [])),
      ["connecting->connected", "connected->reconnecting", "reconnecting->connected"],
    );
    assert.equal(sub.sessionId, "s2");
    await sub.close();
    assert.equal(sub.state, SubscriptionState.Closed);
  });

  it("says so when a resume could not recover, instead of pretending", async () => {
    fake.scripts = [
      [started("s1"), subscribed("e1", 0n), message(1), new ConnectError("gone", Code.Unavailable)],
      [started("s2"), subscribed("e1", 9n, false), message(10)],
    ];
    const { sub, delivered } = open();
    await waitUntil(() => delivered().length === 3, "deliveries");
    assert.deepEqual(delivered(), ["m1", "reset:lost:8", "m10"]);
    await sub.close();
  });

  it("keeps who is here: the list at subscribe, then the events; a resubscribe replaces it", async () => {
    fake.scripts = [
      [
        started("s1"),
        subscribed("e1", 0n, false, ["ann", "bob"]),
        presence(PresenceEventKind.JOIN, "cid"),
        // A batch of changes counts as each of them in order.
        create(SubscribeEventSchema, {
          event: {
            case: "presenceChanges",
            value: {
              room: "r",
              changes: [
                { room: "r", kind: PresenceEventKind.UPDATE, entry: entry("ann", "ann-1", PresenceState.AWAY) },
                { room: "r", kind: PresenceEventKind.LEAVE, entry: entry("bob", "bob-1") },
              ],
            },
          },
        }),
        presence(PresenceEventKind.LEAVE, "dan"), // never listed: no news
        message(1),
        new ConnectError("broker restarting", Code.Unavailable),
      ],
      // The restarted broker knows only who came back so far.
      [started("s2"), subscribed("e1", 1n, true, ["cid"]), message(2)],
    ];
    const { sub, events } = open();
    const who = () => sub.presence("r").map((e) => `${e.user}${e.state === PresenceState.AWAY ? " (away)" : ""}`);
    const seen: string[][] = [];
    sub.on((e) => void (e.type === "message" && seen.push(who())));
    await waitUntil(() => seen.length === 2, "both messages");
    assert.deepEqual(seen[0]!.sort(), ["ann (away)", "cid"]);
    assert.deepEqual(
      events.flatMap((e) => (e.type === "presence" ? [`${e.kind}:${e.entry.user}`] : e.type === "subscribed" ? [`subscribed:${e.present.map((p) => p.user)}`] : [])),
      ["subscribed:ann,bob", "join:cid", "update:ann", "leave:bob", "subscribed:cid"],
    );
    assert.deepEqual(seen[1], ["cid"]);
    assert.equal(sub.user, "u");
    await sub.close();
  });

  it("emits the backlog before the room's live messages, even when those arrive first", async () => {
    fake.history = [msg(1), msg(2), msg(3), msg(4)];
    let answer!: () => void;
    fake.historyGate = new Promise((resolve) => (answer = resolve));
    fake.scripts = [[started(), subscribed("e1", 3n), message(4), message(5)]];
    const { sub, events } = open({ backlog: 2 });
    await waitUntil(() => fake.requests.length === 1, "subscribe");
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(events.filter((e) => e.type === "message"), [], "live messages wait for the backlog");
    answer();
    await waitUntil(() => events.filter((e) => e.type === "message").length === 2, "live messages");
    assert.deepEqual(
      events.flatMap((e) => (e.type === "backlog" ? [`backlog:${e.messages.map((m) => m.sequence)}`] : e.type === "message" ? [`m${e.message.sequence}`] : [])),
      ["backlog:2,3", "m4", "m5"],
    );
    // A resumed room gets no backlog: what it missed is replayed instead.
    await sub.close();
  });

  it("stops on a terminal error instead of retrying forever", async () => {
    fake.scripts = [[new ConnectError("bad room", Code.InvalidArgument)]];
    const { sub, events } = open();
    await assert.rejects(sub.waitFor(SubscriptionState.Connected), /bad room/);
    const last = events.filter((e) => e.type === "state").at(-1);
    assert.equal(last?.type === "state" && last.to, SubscriptionState.Closed);
    assert.equal(fake.requests.length, 1);
  });
});
