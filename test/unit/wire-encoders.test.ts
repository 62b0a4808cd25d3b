import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, it } from "vitest";
import {
  GetHistoryResponseSchema,
  PublishResponseSchema,
  PublishStreamResponseSchema,
  SubscribeEventSchema,
  SubscribeResponseSchema,
} from "../../gen/es/seqcast/v1/pubsub_pb.js";
import type { HistoryPage, PresenceEntry, StoredMessage } from "../../src/engine/engine.js";
import { toPbEvent, toPbMessage, toPbPosition, toPbPublishResponse, toPbPublishResult } from "../../src/server/convert.js";
import { historyResponseFrame } from "../../src/server/history-encoder.js";
import { encodeMessageEvent } from "../../src/server/message-encoder.js";
import { encodePresenceChanges, encodePresenceEvent, encodeSubscribed } from "../../src/server/wire-encoders.js";
import { publishResponseFrame, publishResultsFrame } from "../../src/server/ack-encoder.js";
import { BrokerError } from "../../src/broker/errors.js";
import { frame } from "../../src/server/grpc/frames.js";
import { subscribeFrame } from "../../src/server/event-encoding.js";
import type { SessionEvent } from "../../src/broker/session.js";

/** Bytes as a plain Uint8Array (the message encoder hands a Buffer). */
const plain = (bytes: Uint8Array) => new Uint8Array(bytes);

const beatOf = (n: number): SessionEvent => ({ type: "heartbeat", timeMs: 1_764_480_000_000 + n * 1000 });

/** A stream frame as the bytes it puts on the wire (subscribeFrame may hand pieces to write in order). */
const wire = (pieces: Uint8Array | Uint8Array[]) => plain(Buffer.concat(Array.isArray(pieces) ? pieces : [pieces]));

/** What protobuf-es writes for the same event: the reference. */
const reference = (event: Parameters<typeof toPbEvent>[0]) => toBinary(SubscribeEventSchema, toPbEvent(event));

const message = (extra: Partial<StoredMessage> = {}): StoredMessage => ({
  id: "0c1d2e3f-aaaa-bbbb-cccc-000000000001",
  room: "sports.football",
  epoch: "8d4a5c2b9e7f1a30",
  sequence: 123456789012n,
  sender: "alice",
  content: "héllo wörld 🙂",
  payload: new Uint8Array([0, 1, 2, 255]),
  attributes: { kind: "goal", "": "", team: "rød" },
  timeMs: 1_764_480_000_123,
  clientMessageId: "cm-1",
  ...extra,
});

const entry = (user: string, extra: Partial<PresenceEntry> = {}): PresenceEntry => ({
  user,
  sessionId: `${user}-session`,
  device: "phone",
  state: "away",
  joinedAtMs: 1_764_480_000_000,
  sinceMs: 1_764_480_000_500,
  lastActiveMs: 1_764_480_001_000,
  ...extra,
});

describe("hand-written wire encoders write what protobuf-es writes", () => {
  it("messages, with and without optional fields", () => {
    const dependencies = [
      { room: "general", epoch: "8d4a5c2b9e7f1a30", sequence: 1n },
      { room: "@carol", epoch: "e", sequence: 18_446_744_073_709_551_615n },
      { room: "", epoch: "", sequence: 0n },
    ];
    for (const m of [
      message(),
      message({ content: "", attributes: {}, clientMessageId: "", payload: new Uint8Array(0), timeMs: 0 }),
      message({ timeMs: 1000, sequence: 1n }),
      message({ dependencies }),
      message({ dependencies: [], clientMessageId: "" }),
      message({ timeMs: -1500, sequence: 2n ** 60n, content: "x".repeat(200), id: "" }),
      message({ payload: new Uint8Array(70_000).fill(9), attributes: { ["k".repeat(300)]: "v".repeat(20_000) } }),
    ])
      assert.deepEqual(plain(encodeMessageEvent(m)), reference({ type: "message", message: m }));
    // Compact dependencies (Message.dependency_refs): refs plus the positions they do not name.
    const m = message({ dependencies });
    for (const compact of [
      { same: false, refs: new Uint8Array([1, 255, 0]), explicit: [dependencies[0]!] },
      { same: true, refs: new Uint8Array(0), explicit: [] },
    ])
      assert.deepEqual(plain(encodeMessageEvent(m, compact)), reference({ type: "message", message: m, compact }));
    // As a SubscribeResponse `events` entry: tag of field 1, length, the same event.
    const event = plain(encodeMessageEvent(m));
    const asEntry = plain(encodeMessageEvent(m, undefined, true));
    assert.deepEqual(asEntry, toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, { events: [toPbEvent({ type: "message", message: m })] })));
    assert.deepEqual(asEntry.subarray(asEntry.length - event.length), event);
  });

  it("presence events, batches and the list at join", () => {
    const a = entry("ann");
    const b = entry("bob", { state: "online", device: "" });
    // Odd entries: non-ASCII and long strings, empty ones, times before 1970, at 0, with leftover milliseconds.
    const odd = [
      entry("ünï 🙂", { sessionId: "", device: "", joinedAtMs: -1500, sinceMs: 0, lastActiveMs: 1_764_480_000_001 }),
      entry("u".repeat(200), { device: "d".repeat(70), state: "online", joinedAtMs: 999, sinceMs: -1, lastActiveMs: 2 ** 45 }),
    ];
    for (const kind of ["join", "leave", "update"] as const)
      for (const e of [a, b, ...odd])
        for (const room of ["r", "", "ré".repeat(40)])
          assert.deepEqual(plain(encodePresenceEvent(room, kind, e)), reference({ type: "presence", room, kind, entry: e }));
    const changes = [
      { kind: "join" as const, entry: a, seq: 1 },
      { kind: "leave" as const, entry: b, seq: 2 },
    ];
    assert.deepEqual(encodePresenceChanges("r", changes), reference({ type: "presence_changes", room: "r", changes }));
    const subscribed = {
      type: "subscribed" as const,
      room: "r",
      position: { epoch: "e1", sequence: 42n },
      recovered: true,
      resumedFrom: { epoch: "e1", sequence: 40n },
      pattern: "",
      present: [a, b],
    };
    assert.deepEqual(encodeSubscribed(subscribed), reference(subscribed));
    const empty = { type: "subscribed" as const, room: "x", position: { epoch: "", sequence: 0n }, recovered: false, pattern: "x.*" };
    assert.deepEqual(encodeSubscribed(empty), reference(empty));
  });

  it("the list at join as rooms' lists change between joins: joins, leaves, updates, lists that share a first entry or none", () => {
    // Two rooms whose lists change one step at a time, as a broker's would, and the list at
    // each step encoded as a joiner gets it; one entry object may be in both rooms' lists.
    // A stream frame sends the list as the room's shared bytes: every frame handed out must
    // still hold its bytes after the lists that followed (a write may hold it that long).
    const beat: SessionEvent = { type: "heartbeat", timeMs: 1_764_480_000_000 };
    const step = fc.record({
      room: fc.nat(1),
      op: fc.constantFrom("join", "leave", "update", "shared", "fresh"),
      at: fc.nat(40),
      user: fc.string({ maxLength: 30 }),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const lists: PresenceEntry[][] = [[], []];
        const sent: Array<{ pieces: Uint8Array | Uint8Array[]; bytes: Uint8Array }> = [];
        let n = 0;
        for (const { room, op, at, user } of steps) {
          const list = lists[room]!;
          const i = list.length === 0 ? 0 : at % list.length;
          if (op === "join") list.push(entry(user, { sessionId: `s${n++}`, device: user.slice(0, 3) }));
          else if (op === "leave") list.splice(i, 1);
          else if (op === "update" && list.length > 0) list[i] = { ...list[i]!, state: list[i]!.state === "online" ? "away" : "online", device: user };
          else if (op === "shared" && lists[1 - room]!.length > 0) list.unshift(lists[1 - room]![0]!);
          // An engine that decodes its list afresh: the same entries as new objects.
          else if (op === "fresh") lists[room] = list.map((e) => ({ ...e }));
          const subscribed = { type: "subscribed" as const, room: `r${room}`, position: { epoch: "e", sequence: BigInt(n) }, recovered: false, pattern: "", present: [...lists[room]!] };
          assert.deepEqual(encodeSubscribed(subscribed), reference(subscribed));
          assert.deepEqual(encodeSubscribed(subscribed, true), toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, { events: [toPbEvent(subscribed)] })));
          // Alone, or between other events (a message before, a heartbeat after).
          const events: SessionEvent[] = n % 2 ? [subscribed] : [{ type: "message", message: message({ sequence: BigInt(n + 1) }) }, subscribed, beat];
          const pieces = subscribeFrame(events);
          const bytes = plain(frame(toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, { events: events.map((e) => toPbEvent(e)) }))));
          assert.deepEqual(wire(pieces), bytes);
          sent.push({ pieces, bytes });
        }
        for (const { pieces, bytes } of sent) assert.deepEqual(wire(pieces), bytes);
      }),
      { numRuns: 300 },
    );
  });

  it("a turn's presence batch and the tails late joiners get of it, in any order, alone, in a joiner's frame or behind another event", () => {
    // PresenceBatches hands the room's batch to its live members and each member that went
    // live during the turn the tail from its going live on: tails share the batch's bytes.
    const kinds = ["join", "leave", "update"] as const;
    const present = [entry("zed", { sessionId: "z" })];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(2), fc.string({ maxLength: 12 })), { minLength: 1, maxLength: 30 }),
        fc.array(fc.tuple(fc.nat(40), fc.nat(2)), { maxLength: 20 }),
        fc.constantFrom("", "r", "ré"),
        (made, tails, room) => {
          const batch = made.map(([k, user], i) => ({ kind: kinds[k]!, entry: entry(user, { sessionId: `s${i}` }), seq: i + 1 }));
          const sent: Array<{ pieces: Uint8Array | Uint8Array[]; bytes: Uint8Array }> = [];
          for (const [from, company] of tails) {
            const changes = batch.slice(from % batch.length);
            const event = { type: "presence_changes" as const, room, changes };
            assert.deepEqual(encodePresenceChanges(room, changes), reference(event));
            const subscribed = { type: "subscribed" as const, room, position: { epoch: "e", sequence: 1n }, recovered: false, pattern: "", present };
            // Alone (a member's flush), in a joiner's frame, behind another event.
            const events: SessionEvent[] = [[event], [subscribed, event, beatOf(from)], [beatOf(from), event]][company]!;
            const pieces = subscribeFrame(events);
            const bytes = plain(frame(toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, { events: events.map((e) => toPbEvent(e)) }))));
            assert.deepEqual(wire(pieces), bytes);
            sent.push({ pieces, bytes });
          }
          for (const { pieces, bytes } of sent) assert.deepEqual(wire(pieces), bytes);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("publish acknowledgements, framed: one result, and batches with duplicates, errors and edge values", () => {
    const results = [
      { message: message(), duplicate: false },
      { message: message(), duplicate: true },
      { message: message({ sequence: 18_446_744_073_709_551_615n, timeMs: 0 }), duplicate: false },
      { message: message({ id: "", epoch: "", sequence: 0n, timeMs: 1000 }), duplicate: false },
      { message: message({ timeMs: -1_500 }), duplicate: false },
      { message: message({ id: "é".repeat(40), epoch: "x".repeat(70) }), duplicate: true },
    ];
    for (const result of results)
      assert.deepEqual(plain(publishResponseFrame(result)), plain(frame(toBinary(PublishResponseSchema, toPbPublishResponse(result)))));
    const ids = ["cm-1", "", "ünïcödé-🙂", "k".repeat(200), "cm-5", "cm-6"];
    const batch = results.map((outcome, i) => ({ clientMessageId: ids[i]!, outcome }));
    const failed = { clientMessageId: "cm-bad", outcome: new BrokerError("invalid_argument", "room: not a valid name") };
    for (const outcomes of [batch, [failed], [batch[0]!, failed, batch[3]!], [] as typeof batch]) {
      const expected = create(PublishStreamResponseSchema, {
        results: outcomes.map(({ clientMessageId, outcome }) => toPbPublishResult(clientMessageId, outcome)),
      });
      assert.deepEqual(plain(publishResultsFrame(outcomes)), plain(frame(toBinary(PublishStreamResponseSchema, expected))));
    }
  });

  it("publish acknowledgements of random results: any text (lengths around the one-byte limits, any Unicode), sequence and time", () => {
    // Strings of 0-300 UTF-16 units from every plane, lone surrogates included:
    // across 16 (the ASCII loop), 42 (a one-byte length guaranteed) and 128 bytes.
    const text = fc.oneof(fc.string({ maxLength: 50 }), fc.string({ unit: "binary", maxLength: 60 }), fc.string({ unit: "grapheme", maxLength: 300 }));
    const result = fc.record({
      message: fc.record({
        id: text,
        epoch: text,
        sequence: fc.bigInt({ min: 0n, max: 18_446_744_073_709_551_615n }),
        timeMs: fc.integer({ min: -62_135_596_800_000, max: 253_402_300_799_999 }),
      }),
      duplicate: fc.boolean(),
    });
    const outcome = fc.oneof(
      { weight: 9, arbitrary: result },
      { weight: 1, arbitrary: fc.constant(new BrokerError("invalid_argument", "room: not a valid name")) },
    );
    fc.assert(
      fc.property(fc.array(fc.record({ clientMessageId: text, outcome }), { maxLength: 70 }), (drafts) => {
        const outcomes = drafts.map(({ clientMessageId, outcome }) => ({
          clientMessageId,
          outcome: outcome instanceof BrokerError ? outcome : { ...outcome, message: message(outcome.message) },
        }));
        const expected = create(PublishStreamResponseSchema, {
          results: outcomes.map(({ clientMessageId, outcome }) => toPbPublishResult(clientMessageId, outcome)),
        });
        assert.deepEqual(plain(publishResultsFrame(outcomes)), plain(frame(toBinary(PublishStreamResponseSchema, expected))));
        for (const { outcome } of outcomes)
          if (!(outcome instanceof BrokerError))
            assert.deepEqual(plain(publishResponseFrame(outcome)), plain(frame(toBinary(PublishResponseSchema, toPbPublishResponse(outcome)))));
      }),
      { numRuns: 300 },
    );
  });

  it("GetHistory answers, framed: empty pages of unknown rooms, pages of any messages, positions and edge values", () => {
    const reference = (page: HistoryPage) =>
      frame(
        toBinary(
          GetHistoryResponseSchema,
          create(GetHistoryResponseSchema, {
            messages: page.messages.map((m) => toPbMessage(m)),
            position: toPbPosition(page.position),
            firstSequence: page.firstSequence,
            hasMore: page.hasMore,
          }),
        ),
      );
    const text = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: "grapheme", maxLength: 200 }));
    const sequence = fc.bigInt({ min: 0n, max: 18_446_744_073_709_551_615n });
    const stored = fc.record({
      id: text,
      room: text,
      epoch: text,
      sequence,
      content: text,
      payload: fc.uint8Array({ maxLength: 300 }),
      attributes: fc.dictionary(fc.string({ maxLength: 8 }), text, { maxKeys: 3 }),
      timeMs: fc.integer({ min: -62_135_596_800_000, max: 253_402_300_799_999 }),
      dependencies: fc.option(fc.array(fc.record({ room: text, epoch: text, sequence }), { maxLength: 3 }), { nil: undefined }),
    });
    const page = fc.record({
      messages: fc.array(stored.map((m) => message(m)), { maxLength: 12 }),
      position: fc.record({ epoch: text, sequence }),
      firstSequence: sequence,
      hasMore: fc.boolean(),
    });
    const unknown: HistoryPage = { messages: [], position: { epoch: "", sequence: 0n }, firstSequence: 0n, hasMore: false };
    assert.deepEqual(plain(historyResponseFrame(unknown)), plain(reference(unknown)));
    fc.assert(
      fc.property(page, (p) => assert.deepEqual(plain(historyResponseFrame(p)), plain(reference(p)))),
      { numRuns: 300 },
    );
  });
});
