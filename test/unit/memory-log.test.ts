import assert from "node:assert/strict";
import fc from "fast-check";
import { describe, it } from "vitest";
import type { MessageDraft, StoredMessage } from "../../src/engine/engine.js";
import { RecordArena } from "../../src/engine/memory-arena.js";
import { MessageLog } from "../../src/engine/memory-log.js";

const draft = (k: number, fields: Partial<MessageDraft> = {}): MessageDraft => ({
  room: "ignored",
  sender: `user${k % 3}`,
  content: `message ${k}`,
  payload: Uint8Array.from({ length: k % 50 }, (_, i) => (k + i) & 0xff),
  attributes: k % 4 === 0 ? { kind: "test", n: String(k) } : {},
  timeMs: 1_700_000_000_000 + k,
  clientMessageId: `cm-${k}`,
  ...fields,
});

/** What the log should give back for `d` stored as `sequence` of room "r", epoch "e". */
const expected = (d: MessageDraft, id: string, sequence: number): StoredMessage => ({
  id,
  room: "r",
  epoch: "e",
  sequence: BigInt(sequence),
  sender: d.sender,
  content: d.content,
  payload: Uint8Array.from(d.payload),
  attributes: { ...d.attributes },
  timeMs: d.timeMs,
  clientMessageId: d.clientMessageId,
  dependencies: d.dependencies && d.dependencies.length > 0 ? d.dependencies : undefined,
});

describe("memory engine: retained messages as records in a shared arena", () => {
  it("gives back every field as published: Unicode, empty strings, attributes, dependencies, large payloads", () => {
    const arena = new RecordArena(4096);
    const log = new MessageLog(arena);
    const drafts = [
      draft(1, { content: "", sender: "", clientMessageId: "", attributes: {} }),
      draft(2, { content: "héllo ✓ 𝄞 \u0000", attributes: { "ключ": "значение", "": "" } }),
      draft(3, { dependencies: [{ room: "general", epoch: "0123456789abcdef", sequence: 2n ** 64n - 1n }, { room: "@carol", epoch: "e2", sequence: 1n }] }),
      // Larger than a quarter chunk: a chunk of its own.
      draft(4, { payload: new Uint8Array(10_000).fill(7), content: "x".repeat(3000) }),
      draft(5, { timeMs: -1.5, content: "é".repeat(200) }),
    ];
    drafts.forEach((d, i) => log.append(d, `id-${i}`, i + 1));
    assert.equal(log.first, 1);
    assert.equal(log.size, 5);
    drafts.forEach((d, i) => {
      assert.deepEqual(log.message(i + 1, "r", "e"), expected(d, `id-${i}`, i + 1));
      assert.equal(log.idOf(i + 1), `id-${i}`);
    });
    assert.equal(log.idOf(0), undefined);
    assert.equal(log.idOf(6), undefined);
    // The payload read back is a copy, not a view of the arena.
    const payload = log.message(4, "r", "e").payload;
    payload.fill(0);
    assert.equal(log.message(4, "r", "e").payload[0], 7);
  });

  it("gives back each message's own dependencies when publishers share one frozen list, lists alternate and plain lists change after their write", () => {
    const frozen = (...sequences: bigint[]) => Object.freeze(sequences.map((sequence, i) => Object.freeze({ room: `room${i}`, epoch: "8d4a5c2b9e7f1a30", sequence })));
    const a = frozen(1n, 2n, 3n);
    const b = frozen(1n, 2n, 4n);
    const plainList = [{ room: "general", epoch: "e", sequence: 5n }];
    const lists = [a, a, b, a, undefined, b, b];
    const arena = new RecordArena(4096);
    const logs = [new MessageLog(arena), new MessageLog(arena)];
    const drafts = lists.map((dependencies, i) => draft(i, { dependencies }));
    drafts.push(draft(7, { dependencies: plainList }));
    const append = (i: number) => logs[i % 2]!.append(drafts[i]!, `id-${i}`, Math.floor(i / 2) + 1);
    drafts.forEach((_, i) => append(i));
    // A list that is not frozen may change after its message was stored: what was stored stays, and the next message has the change.
    plainList[0]!.sequence = 6n;
    drafts.push(draft(8, { dependencies: plainList }));
    append(8);
    const stored = (i: number) => logs[i % 2]!.message(Math.floor(i / 2) + 1, "r", "e").dependencies;
    lists.forEach((list, i) => assert.deepEqual(stored(i), list && list.map((d) => ({ ...d })), `message ${i}`));
    assert.deepEqual(stored(7), [{ room: "general", epoch: "e", sequence: 5n }]);
    assert.deepEqual(stored(8), [{ room: "general", epoch: "e", sequence: 6n }]);
  });

  it("trims from the front, restarts after a clear at any sequence, and refuses a gap", () => {
    const arena = new RecordArena(4096);
    const log = new MessageLog(arena);
    for (let s = 1; s <= 300; s++) log.append(draft(s), `id-${s}`, s);
    log.dropBefore(201);
    assert.equal(log.first, 201);
    assert.equal(log.size, 100);
    assert.equal(log.idOf(200), undefined);
    assert.equal(log.message(201, "r", "e").content, "message 201");
    assert.throws(() => log.append(draft(302), "id-302", 302), /sequence 302 after 300/);
    // By age: drops while older, stopping at the first message that is not.
    log.dropOlderThan(1_700_000_000_000 + 250);
    assert.equal(log.first, 250);
    assert.equal(log.message(250, "r", "e").timeMs, 1_700_000_000_000 + 250);
    log.dropBefore(1_000);
    assert.equal(log.size, 0);
    assert.equal(log.first, 0);
    // Empty: the next message may start anywhere (the engine's sequence went on).
    log.append(draft(500), "id-500", 500);
    assert.equal(log.first, 500);
    log.clear();
    assert.equal(log.size, 0);
    log.append(draft(1), "id-1", 1);
    assert.deepEqual(log.message(1, "r", "e"), expected(draft(1), "id-1", 1));
    assert.equal(arena.stats.live > 0, true);
    log.dispose();
    assert.equal(arena.stats.live, 0);
  });

  it("keeps at most its limit: an append at the limit lets the oldest go, and age trims read each message's own time", () => {
    const arena = new RecordArena(4096);
    const log = new MessageLog(arena, 5);
    const other = new MessageLog(arena, 3);
    for (let s = 1; s <= 1000; s++) {
      log.append(draft(s), `id-${s}`, s);
      if (s % 3 === 0) other.append(draft(s, { payload: new Uint8Array(100 + (s % 7)) }), `o-${s}`, s / 3);
    }
    assert.equal(log.first, 996);
    assert.equal(log.size, 5);
    for (let s = 996; s <= 1000; s++) assert.deepEqual(log.message(s, "r", "e"), expected(draft(s), `id-${s}`, s));
    assert.equal(log.idOf(995), undefined);
    assert.deepEqual(other.message(333, "r", "e").clientMessageId, "cm-999");
    assert.equal(other.size, 3);
    // Eight records live, and chunks were given back all along (1,333 records written).
    const { allocated, live, chunks } = arena.stats;
    assert.ok(chunks <= 3 && allocated <= 3 * 4096, JSON.stringify(arena.stats));
    assert.ok(live > 0 && live <= 8 * 400, JSON.stringify(arena.stats));
    // By age, from the ring's times: 996 and 997 are older than 998's time.
    log.dropOlderThan(1_700_000_000_000 + 998);
    assert.equal(log.first, 998);
    log.append(draft(1001), "id-1001", 1001);
    log.append(draft(1002), "id-1002", 1002);
    log.append(draft(1003), "id-1003", 1003);
    assert.equal(log.first, 999);
    assert.deepEqual(log.message(999, "r", "e"), expected(draft(999), "id-999", 999));
    // A limit of 0 keeps nothing.
    const none = new MessageLog(arena, 0);
    none.append(draft(1), "id-1", 1);
    assert.equal(none.size, 0);
    assert.equal(none.first, 0);
    log.dispose();
    other.dispose();
    assert.equal(arena.stats.live, 0);
  });

  it("gives back the bytes of records of their own chunk, of any size, as they go", () => {
    const arena = new RecordArena(4096);
    const log = new MessageLog(arena, 1);
    for (const bytes of [300_000, 5_000, 140_000, 2_000_000]) {
      log.append(draft(1, { payload: new Uint8Array(bytes).fill(bytes & 0xff) }), `id-${bytes}`, log.first + log.size || 1);
      const { allocated, live } = arena.stats;
      assert.ok(live >= bytes && live < bytes + 200 && allocated < bytes + 8192, `${bytes}: ${JSON.stringify(arena.stats)}`);
      assert.equal(log.message(log.first, "r", "e").payload.length, bytes);
    }
    log.clear();
    assert.deepEqual(arena.stats, { allocated: 0, live: 0, chunks: 0 });
  });

  it("gives chunks back as their records are trimmed, and moves the records that pin emptied chunks", () => {
    const arena = new RecordArena(4096);
    // One log keeps every 40th message for good; the other keeps only its last.
    const kept = new MessageLog(arena);
    const churn = new MessageLog(arena);
    let keptSequence = 0;
    for (let s = 1; s <= 20_000; s++) {
      churn.append(draft(s), `id-${s}`, s);
      churn.dropBefore(s);
      if (s % 40 === 0) kept.append(draft(s), `kept-${s}`, ++keptSequence);
    }
    const { allocated, live } = arena.stats;
    assert.ok(allocated <= 2 * live + 5 * 4096, `${allocated} bytes allocated for ${live} live`);
    for (let k = 1; k <= keptSequence; k++) assert.deepEqual(kept.message(k, "r", "e"), expected(draft(40 * k), `kept-${40 * k}`, k));
    assert.equal(churn.message(20_000, "r", "e").clientMessageId, "cm-20000");
  });

  it("compacts chunks that a bulk trim left mostly empty when asked, with nothing being written", () => {
    const arena = new RecordArena(4096);
    const logs = Array.from({ length: 4 }, () => new MessageLog(arena));
    for (let s = 1; s <= 500; s++) for (const log of logs) log.append(draft(s), `id-${s}`, s);
    const full = arena.stats;
    // Three of four records go: every chunk is a quarter live.
    for (const log of logs.slice(1)) log.clear();
    assert.equal(arena.stats.allocated, full.allocated);
    arena.compact();
    const { allocated, live } = arena.stats;
    assert.ok(allocated <= 2 * live + 5 * 4096 && allocated < full.allocated, `${allocated} bytes allocated for ${live} live (${full.allocated} before)`);
    for (let s = 1; s <= 500; s++) assert.deepEqual(logs[0]!.message(s, "r", "e"), expected(draft(s), `id-${s}`, s));
  });

  it("holds what a model of several logs holds, through random appends, trims, clears and disposals", () => {
    const text = fc.string({ unit: "grapheme", maxLength: 30 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant("append" as const), log: fc.nat(3), content: text, bytes: fc.nat(3000), attribute: fc.option(text) }),
      fc.record({ kind: fc.constant("trim" as const), log: fc.nat(3), keep: fc.nat(20) }),
      fc.record({ kind: fc.constant("age" as const), log: fc.nat(3), back: fc.nat(40) }),
      fc.record({ kind: fc.constant("clear" as const), log: fc.nat(3) }),
      fc.record({ kind: fc.constant("dispose" as const), log: fc.nat(3) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), fc.array(fc.option(fc.integer({ min: 1, max: 12 })), { minLength: 4, maxLength: 4 }), (ops, limits) => {
        const arena = new RecordArena(2048);
        // Logs with a limit (some) and without (null).
        const newLog = (i: number) => new MessageLog(arena, limits[i] ?? Infinity);
        const logs = Array.from({ length: 4 }, (_, i) => newLog(i));
        // Per log: sequence → [draft, id]; next sequence.
        const models = Array.from({ length: 4 }, () => ({ messages: new Map<number, [MessageDraft, string]>(), next: 1 }));
        let k = 0;
        for (const o of ops) {
          const model = models[o.log]!;
          const log = logs[o.log]!;
          if (o.kind === "append") {
            const d = draft(k++, { content: o.content, payload: new Uint8Array(o.bytes).fill(k & 0xff), attributes: o.attribute === null ? {} : { a: o.attribute } });
            const sequence = model.next++;
            log.append(d, `id-${k}`, sequence);
            model.messages.set(sequence, [d, `id-${k}`]);
            if (model.messages.size > (limits[o.log] ?? Infinity)) model.messages.delete(model.messages.keys().next().value!);
          } else if (o.kind === "trim") {
            const from = model.next - o.keep;
            log.dropBefore(from);
            for (const s of model.messages.keys()) if (s < from) model.messages.delete(s);
          } else if (o.kind === "age") {
            // Drafts' times grow with k: every message older than the cutoff goes.
            const oldest = draft(k - o.back).timeMs;
            log.dropOlderThan(oldest);
            for (const [s, [d]] of model.messages) if (d.timeMs < oldest) model.messages.delete(s);
          } else {
            if (o.kind === "clear") log.clear();
            else {
              log.dispose();
              logs[o.log] = newLog(o.log);
            }
            model.messages.clear();
            model.next = 1;
          }
        }
        let live = 0;
        models.forEach((model, i) => {
          assert.equal(logs[i]!.size, model.messages.size);
          for (const [sequence, [d, id]] of model.messages) {
            assert.deepEqual(logs[i]!.message(sequence, "r", "e"), expected(d, id, sequence));
            live++;
          }
        });
        if (live === 0) assert.equal(arena.stats.live, 0);
        arena.compact();
        assert.ok(arena.stats.allocated <= 2 * arena.stats.live + 5 * 2048, JSON.stringify(arena.stats));
        // Still all there after the compaction moved them.
        models.forEach((model, i) => {
          for (const [sequence, [d, id]] of model.messages) assert.deepEqual(logs[i]!.message(sequence, "r", "e"), expected(d, id, sequence));
        });
      }),
      { numRuns: 200 },
    );
  });
});
