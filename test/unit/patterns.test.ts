import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { isPattern, matchesPattern, patternError } from "../../src/names/patterns.js";

describe("room patterns", () => {
  it("matches one segment with * and the rest with >", () => {
    const cases: Array<[string, string, boolean]> = [
      ["sports.*", "sports.football", true],
      ["sports.*", "sports.football.uk", false],
      ["sports.*", "sports", false],
      ["sports.>", "sports.football", true],
      ["sports.>", "sports.football.uk", true],
      ["sports.>", "sports", false],
      [">", "anything.at.all", true],
      ["*.news", "world.news", true],
      ["*.news", "world.sports", false],
      ["general", "general", true],
      ["general", "general.x", false],
    ];
    for (const [p, r, expected] of cases) assert.equal(matchesPattern(p, r), expected, `${p} ~ ${r}`);
  });

  it("validates patterns", () => {
    assert.equal(patternError("sports.*"), null);
    assert.equal(patternError("a.>"), null);
    assert.match(patternError("a.>.b")!, /last segment/);
    assert.match(patternError("a..b")!, /segments/);
    assert.match(patternError("")!, /empty/);
    assert.equal(isPattern("a.*"), true);
    assert.equal(isPattern("a.b"), false);
  });
});
