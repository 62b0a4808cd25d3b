import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { compactDependencies } from "../../src/broker/compact-dependencies.js";
import { eventBytes, messageEvent } from "../../src/broker/queued-events.js";
import type { Dependency, StoredMessage } from "../../src/engine/engine.js";
import { eventEntry } from "../../src/server/event-encoding.js";

/**
 * The estimated size a queued message counts against its session's byte
 * bound (sessionQueueBytes): its dependencies count as the stream carries
 * them, whole or in the compact form.
 */

const position = (room: string, sequence: bigint): Dependency => Object.freeze({ room, epoch: "8d4a5c2b9e7f1a30", sequence });
const context = Object.freeze(Array.from({ length: 8 }, (_, i) => position(`bench.room${i}`, 1_000_000n + BigInt(i))));

const stored = (sequence: bigint, dependencies: readonly Dependency[]): StoredMessage => ({
  id: `0b7c1f6e-3d1a-4c55-9a51-5f1d8a3c2b${sequence.toString().padStart(2, "0")}`,
  room: "feed",
  epoch: "e1",
  sequence,
  sender: "alice",
  content: "",
  payload: new Uint8Array(256),
  attributes: {},
  timeMs: 1_700_000_000_000,
  clientMessageId: `c${sequence}`,
  dependencies,
});

/** Estimated and encoded bytes the compact form saves over the whole list. */
function saved(message: StoredMessage, previous: StoredMessage): { estimated: number; encoded: number } {
  const compact = compactDependencies(message, previous);
  assert.ok(compact, "sent in the compact form");
  const whole = messageEvent(message, undefined);
  const small = messageEvent(message, compact);
  return { estimated: eventBytes(whole) - eventBytes(small), encoded: eventEntry(whole).length - eventEntry(small).length };
}

describe("queued event sizes", () => {
  it("a message whose list is the one before counts the flag, not its eight positions", () => {
    const { estimated, encoded } = saved(stored(2n, context), stored(1n, context));
    assert.ok(encoded > 250, `the compact form saves ${encoded} bytes on the wire`);
    assert.ok(estimated >= encoded * 0.8 && estimated <= encoded * 1.5, `estimate saves ${estimated} bytes, the wire ${encoded}`);
  });

  it("a moved position counts whole, the seven named by index one byte each", () => {
    const moved = Object.freeze([...context.slice(1), position("bench.room0", 1_000_001n)]);
    const { estimated, encoded } = saved(stored(3n, moved), stored(2n, context));
    assert.ok(encoded > 200, `the compact form saves ${encoded} bytes on the wire`);
    assert.ok(estimated >= encoded * 0.8 && estimated <= encoded * 1.5, `estimate saves ${estimated} bytes, the wire ${encoded}`);
  });

  it("a stream that asked for whole lists counts every position", () => {
    const withList = eventBytes(messageEvent(stored(4n, context), undefined));
    const without = eventBytes(messageEvent({ ...stored(4n, context), dependencies: undefined }, undefined));
    assert.ok(withList - without >= 8 * 30, `eight positions count ${withList - without} bytes`);
  });
});
