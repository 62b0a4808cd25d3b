import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { BrokerError } from "../../src/broker/errors.js";
import { MAX_DEPENDENCIES, validateDependencies } from "../../src/broker/validate.js";

const dep = (room: string, epoch = "e1", sequence = 1n) => ({ room, epoch, sequence });

function refusal(run: () => unknown): BrokerError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof BrokerError);
    return error;
  }
  assert.fail("accepted");
}

describe("causal dependencies of a publish", () => {
  it("accepts up to the bound, as plain copies; none is undefined", () => {
    assert.equal(validateDependencies(undefined), undefined);
    assert.equal(validateDependencies([]), undefined);
    const many = Array.from({ length: MAX_DEPENDENCIES }, (_, i) => ({ ...dep(`room${i}`), $typeName: "seqcast.v1.RoomPosition" }));
    const copies = validateDependencies(many)!;
    assert.equal(copies.length, MAX_DEPENDENCIES);
    assert.deepEqual(copies[3], dep("room3"));
    assert.deepEqual(validateDependencies([dep("@carol", "x", 18_446_744_073_709_551_615n)]), [dep("@carol", "x", 18_446_744_073_709_551_615n)]);
  });

  it("keeps a frozen list of frozen positions as it is (the wire decoder's), and copies any other", () => {
    const frozen = Object.freeze([Object.freeze(dep("general")), Object.freeze(dep("@carol", "e2", 7n))]);
    assert.equal(validateDependencies(frozen), frozen);
    assert.equal(validateDependencies(frozen), frozen, "known from then on");
    const open = [Object.freeze(dep("general"))];
    const copy = validateDependencies(open)!;
    assert.notEqual(copy, open);
    assert.deepEqual(copy, open);
    const frozenList = Object.freeze([dep("general")]);
    assert.notEqual(validateDependencies(frozenList), frozenList, "its positions can still change");
    const bad = Object.freeze([Object.freeze(dep("general", "", 1n))]);
    assert.equal(refusal(() => validateDependencies(bad)).code, "invalid_argument");
    assert.equal(refusal(() => validateDependencies(bad)).code, "invalid_argument", "refused every time");
  });

  it("refuses more than the bound, bad rooms, empty or long epochs and sequence 0 with INVALID_ARGUMENT naming the field", () => {
    const cases: Array<[Parameters<typeof validateDependencies>[0], string]> = [
      [Array.from({ length: MAX_DEPENDENCIES + 1 }, (_, i) => dep(`r${i}`)), "dependencies"],
      [[dep("general"), dep("bad room")], "dependencies[1].room"],
      [[dep("")], "dependencies[0].room"],
      [[dep("general", "")], "dependencies[0].epoch"],
      [[dep("general", "e".repeat(65))], "dependencies[0].epoch"],
      [[dep("general", "e1", 0n)], "dependencies[0].sequence"],
    ];
    for (const [input, field] of cases) {
      const error = refusal(() => validateDependencies(input));
      assert.equal(error.code, "invalid_argument");
      assert.equal(error.reason, "INVALID_REQUEST");
      assert.equal(error.metadata.field, field);
      assert.match(error.message, new RegExp(`^${field.replace(/[[\]]/g, "\\$&")}`));
    }
  });
});
