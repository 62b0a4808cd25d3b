import assert from "node:assert/strict";
import { describe, it } from "vitest";
import type { HistoryPage, HistoryQuery, StoredMessage } from "../../src/engine/engine.js";
import { filteredPage, firstReplayPage, nextReplayPage, PAGE } from "../../src/broker/history.js";
import { compileFilter } from "../../src/broker/filter.js";
import { BrokerError } from "../../src/broker/errors.js";
import { validateMessageBody, validateShortText, validateUser } from "../../src/broker/validate.js";

/**
 * The broker's history paging without an engine: a room of `count` messages
 * (sequences 1..count, epoch "e1") read the way engines read it, and the pages
 * the broker builds from it for filtered reads and replays.
 */
function roomOf(count: number, retainedFrom = 1n) {
  const messages: StoredMessage[] = [];
  for (let s = retainedFrom; s <= BigInt(count); s++)
    messages.push({
      id: `m${s}`,
      room: "r",
      epoch: "e1",
      sequence: s,
      sender: "u",
      content: s % 3n === 0n ? "fizz" : `n${s}`,
      payload: new Uint8Array(),
      attributes: {},
      timeMs: 0,
      clientMessageId: "",
    });
  const reads: HistoryQuery[] = [];
  const read = async (_room: string, query: HistoryQuery): Promise<HistoryPage> => {
    reads.push(query);
    const inRange = messages.filter((m) => m.sequence > query.after && (query.before === 0n || m.sequence < query.before));
    const page = query.direction === "forward" ? inRange.slice(0, query.limit) : inRange.slice(-query.limit);
    return {
      messages: page,
      position: { epoch: "e1", sequence: BigInt(count) },
      firstSequence: messages[0]?.sequence ?? 0n,
      hasMore: inRange.length > query.limit,
    };
  };
  return { read, reads };
}

const fizz = compileFilter('content == "fizz"', "filter");

describe("filtered history pages", () => {
  it("pages forward through the engine until the limit matched, and says whether more remain", async () => {
    const { read, reads } = roomOf(3 * PAGE);
    const page = await filteredPage(read, "r", { after: 0n, before: 0n, limit: 400, direction: "forward" }, fizz);
    assert.equal(page.messages.length, 400);
    assert.ok(page.messages.every((m) => m.content === "fizz"));
    assert.deepEqual([page.messages[0]!.sequence, page.messages.at(-1)!.sequence], [3n, 1200n]);
    assert.equal(page.hasMore, true);
    // 333 matches in the first 1000, so a second page was read, after the first one's last message.
    assert.deepEqual(reads.map((q) => q.after), [0n, 1000n]);
  });

  it("pages backward from the newest and returns the matches ascending", async () => {
    const { read, reads } = roomOf(3 * PAGE);
    const page = await filteredPage(read, "r", { after: 0n, before: 0n, limit: 400, direction: "backward" }, fizz);
    assert.equal(page.messages.length, 400);
    assert.deepEqual([page.messages[0]!.sequence, page.messages.at(-1)!.sequence], [1803n, 3000n]);
    assert.equal(page.hasMore, true);
    assert.deepEqual(reads.map((q) => q.before), [0n, 2001n]);
  });

  it("returns every match with hasMore false when the range runs out first, in both directions", async () => {
    for (const direction of ["forward", "backward"] as const) {
      const { read } = roomOf(1500);
      const page = await filteredPage(read, "r", { after: 0n, before: 0n, limit: 900, direction }, fizz);
      assert.equal(page.messages.length, 500);
      assert.equal(page.hasMore, false);
      assert.ok(page.messages[0]!.sequence < page.messages.at(-1)!.sequence, "ascending");
    }
  });

  it("stops at an exact match on the last message of the range without claiming more", async () => {
    const { read } = roomOf(9);
    const page = await filteredPage(read, "r", { after: 0n, before: 0n, limit: 3, direction: "forward" }, fizz);
    assert.deepEqual(page.messages.map((m) => m.sequence), [3n, 6n, 9n]);
    assert.equal(page.hasMore, false);
  });
});

describe("replay pages", () => {
  it("replays from a position of the same epoch, densely", async () => {
    const { read } = roomOf(10);
    const page = await firstReplayPage(read, "r", { epoch: "e1", sequence: 4n }, { epoch: "e1", sequence: 10n });
    assert.deepEqual(page?.map((m) => m.sequence), [5n, 6n, 7n, 8n, 9n, 10n]);
    assert.deepEqual(await firstReplayPage(read, "r", { epoch: "e1", sequence: 10n }, { epoch: "e1", sequence: 10n }), []);
    assert.deepEqual(await nextReplayPage(read, "r", 10n, { epoch: "e1", sequence: 10n }), []);
  });

  it("cannot replay across epochs, from the future, or over trimmed messages", async () => {
    const { read } = roomOf(10, 6n);
    assert.equal(await firstReplayPage(read, "r", { epoch: "e0", sequence: 4n }, { epoch: "e1", sequence: 10n }), undefined);
    assert.equal(await firstReplayPage(read, "r", { epoch: "e1", sequence: 11n }, { epoch: "e1", sequence: 10n }), undefined);
    assert.equal(await firstReplayPage(read, "r", { epoch: "e1", sequence: 2n }, { epoch: "e1", sequence: 10n }), undefined);
    assert.deepEqual((await nextReplayPage(read, "r", 5n, { epoch: "e1", sequence: 10n }))?.length, 5);
    // The room moved to another epoch meanwhile.
    assert.equal(await nextReplayPage(read, "r", 5n, { epoch: "e2", sequence: 10n }), undefined);
  });
});

describe("validation messages name the field and the limit", () => {
  const code = (call: () => unknown) => {
    try {
      call();
    } catch (error) {
      assert.ok(error instanceof BrokerError);
      return `${error.code}:${error.reason}:${error.message}`;
    }
    return "accepted";
  };

  it("refuses bad user names and long short texts", () => {
    assert.match(code(() => validateUser("")), /^invalid_argument:.*user: /);
    assert.match(code(() => validateUser(undefined)), /^invalid_argument:.*user: /);
    assert.equal(code(() => validateUser("alice")), "accepted");
    assert.match(code(() => validateShortText("ééé", "device", 5)), /^invalid_argument:INVALID_REQUEST:device: 6 bytes, at most 5 allowed$/);
    assert.equal(code(() => validateShortText("abcde", "device", 5)), "accepted");
  });

  it("refuses empty bodies, empty attribute keys and bodies over the size (counting attributes)", () => {
    const body = (content: string, attributes: Record<string, string> = {}) => ({ content, payload: new Uint8Array(), attributes });
    assert.match(code(() => validateMessageBody(body(""), 10)), /INVALID_MESSAGE:content: must not be empty/);
    assert.match(code(() => validateMessageBody(body("x", { "": "v" }), 10)), /INVALID_MESSAGE:attributes: keys must not be empty/);
    assert.match(code(() => validateMessageBody(body("12345", { key: "val" }), 10)), /MESSAGE_TOO_LARGE:message is 11 bytes/);
    assert.equal(code(() => validateMessageBody(body("12345", { k: "v" }), 10)), "accepted");
  });
});
