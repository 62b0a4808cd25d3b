import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, it } from "vitest";
import { createMemoryEngine } from "../../src/engine/memory.js";
import { engineConformance } from "./conformance.js";

engineConformance("memory", (options) => createMemoryEngine(options));

/** V8's collector, as --expose-gc gives it (set at run time: the test runner's workers start without the flag). */
function collector(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

describe("memory engine retention", () => {
  it("lets go of a trimmed message at once, in a room that keeps fewer than 64", async () => {
    const gc = collector();
    const engine = createMemoryEngine({ retention: { historySize: 1, historyTtlMs: 0, dedupeWindowMs: 0 }, listener: () => {} });
    const draft = (n: number) => ({ room: "small", sender: "alice", content: `m${n}`, payload: new Uint8Array(0), attributes: {}, timeMs: n, clientMessageId: "" });
    let first: WeakRef<object> | undefined;
    await (async () => {
      first = new WeakRef((await engine.publish(draft(1))).message);
    })();
    for (let n = 2; n <= 3; n++) await engine.publish(draft(n));
    // A WeakRef's target is kept until the job that made it ends.
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    assert.equal(first!.deref(), undefined, "the trimmed message is still referenced");
    const page = await engine.history("small", { after: 0n, before: 0n, limit: 10, direction: "forward" });
    assert.deepEqual(page.messages.map((m) => m.content), ["m3"]);
    await engine.close();
  });
});
