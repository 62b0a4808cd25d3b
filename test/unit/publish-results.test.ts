import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { BrokerError } from "../../src/broker/errors.js";
import type { PublishResult } from "../../src/engine/engine.js";
import { PublishResults, type PublishOutcome } from "../../src/server/publish-results.js";

const stored = (sequence: number) => ({ message: { sequence: BigInt(sequence) }, duplicate: false }) as unknown as PublishResult;
const ids = (from: number, count: number) => Array.from({ length: count }, (_, i) => `m${from + i}`);
/** Resolves with what `read()` returns once the event-loop turn's setImmediate callbacks queued so far have run. */
const atTurnEnd = <T>(read: () => T) => new Promise<T>((resolve) => setImmediate(() => resolve(read())));

function recorder() {
  const batches: string[][] = [];
  let doneCalls = 0;
  let doneWith: unknown;
  const results = new PublishResults(
    (batch: PublishOutcome[]) => batches.push(batch.map((r) => r.clientMessageId)),
    (error) => {
      doneCalls++;
      doneWith = error;
    },
  );
  return { results, batches, done: () => ({ calls: doneCalls, error: doneWith }) };
}

describe("PublishResults: a stream's acknowledgements", () => {
  it("hands a burst of 64 settled results on before the turn ends, and a few only at its end", async () => {
    const burst = recorder();
    const beforeTurnEnd = atTurnEnd(() => burst.batches.length);
    burst.results.addMany(ids(0, 64), Promise.resolve(ids(0, 64).map((_, i) => stored(i + 1))));
    assert.equal(await beforeTurnEnd, 1, "64 results: one batch before the turn's setImmediate callbacks");
    assert.deepEqual(burst.batches[0], ids(0, 64));

    const few = recorder();
    const fewBeforeTurnEnd = atTurnEnd(() => few.batches.length);
    few.results.addMany(ids(0, 10), Promise.resolve(ids(0, 10).map((_, i) => stored(i + 1))));
    assert.equal(await fewBeforeTurnEnd, 0, "10 results wait for the end of the turn");
    assert.deepEqual(await atTurnEnd(() => few.batches), [ids(0, 10)]);
  });

  it("keeps arrival order whatever order publishes settle in, errors in their place, and ends once", async () => {
    const { results, batches, done } = recorder();
    let settleFirst!: (value: Array<PublishResult | BrokerError>) => void;
    results.addMany(ids(0, 2), new Promise((resolve) => (settleFirst = resolve)));
    results.addMany(ids(2, 70), Promise.resolve(ids(2, 70).map((_, i) => stored(i + 3))));
    results.add("m72", Promise.reject(new BrokerError("invalid_argument", "bad message")));
    results.close();
    assert.deepEqual(await atTurnEnd(() => batches), [], "nothing before the first message's result");
    settleFirst([stored(1), stored(2)]);
    await atTurnEnd(() => undefined);
    await atTurnEnd(() => undefined);
    assert.deepEqual(batches.flat(), ids(0, 73));
    assert.deepEqual(done(), { calls: 1, error: undefined });
    results.fail(new Error("late"));
    await atTurnEnd(() => undefined);
    assert.equal(done().calls, 1, "done is called once, even after a late failure");
  });
});
