import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { decodeDependencies, encodeDependencies } from "../../src/engine/dependency-codec.js";

const position = (room: string, sequence: bigint) => ({ room, epoch: "8d4a5c2b9e7f1a30", sequence });

describe("causal dependencies as text (SQLite column, Redis body)", () => {
  it("reads back what it wrote, uint64 included; nothing for none", () => {
    const list = [position("general", 2n ** 64n - 1n), position("@carol", 1n)];
    assert.deepEqual(decodeDependencies(encodeDependencies(list)), list);
    assert.equal(encodeDependencies(undefined), undefined);
    assert.equal(encodeDependencies([]), undefined);
    assert.equal(decodeDependencies(null), undefined);
  });

  it("reuses the text of a frozen list of frozen positions, and writes any other list anew, even the same one changed", () => {
    const frozen = Object.freeze([Object.freeze(position("a", 1n)), Object.freeze(position("b", 2n))]);
    const other = Object.freeze([Object.freeze(position("a", 1n)), Object.freeze(position("b", 3n))]);
    for (const list of [frozen, frozen, other, frozen]) assert.deepEqual(decodeDependencies(encodeDependencies(list)), list);
    const open = [position("a", 1n)];
    assert.deepEqual(decodeDependencies(encodeDependencies(open)), [position("a", 1n)]);
    open[0]!.sequence = 5n;
    assert.deepEqual(decodeDependencies(encodeDependencies(open)), [position("a", 5n)]);
    const frozenOfOpen = Object.freeze([position("c", 1n)]);
    encodeDependencies(frozenOfOpen);
    frozenOfOpen[0]!.sequence = 9n;
    assert.deepEqual(decodeDependencies(encodeDependencies(frozenOfOpen)), [position("c", 9n)]);
  });
});
