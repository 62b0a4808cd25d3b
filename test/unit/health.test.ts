import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { Code, ConnectError, createClient, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as Status,
  type HealthCheckResponse,
} from "../../gen/es/grpc/health/v1/health_pb.js";
import { registerHealth, type HealthState } from "../../src/server/health.js";

const SVC = "seqcast.v1.PubSubService";

describe("grpc.health.v1.Health", () => {
  let state!: HealthState;
  // In memory: the Connect router runs in this process, no socket involved.
  const client = createClient(
    Health,
    createRouterTransport((router: ConnectRouter) => {
      state = registerHealth(router, { "": "SERVING", [SVC]: "SERVING" });
    }),
  );

  /** Reads Watch responses one at a time, with a timeout per read. */
  function watch(service: string) {
    const abort = new AbortController();
    const it = client.watch({ service }, { signal: abort.signal })[Symbol.asyncIterator]();
    return {
      async next(): Promise<Status | "end"> {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("no Watch message within 2s")), 2000);
        });
        try {
          const r: IteratorResult<HealthCheckResponse> = await Promise.race([it.next(), timeout]);
          return r.done ? "end" : r.value.status;
        } finally {
          clearTimeout(timer);
        }
      },
      /** Resolves "silent" when nothing arrives within ms (the pending read is then cancelled). */
      async nothingWithin(ms: number): Promise<"silent" | Status | "end"> {
        const pending = it.next().then((r) => (r.done ? "end" : r.value.status));
        const quiet = new Promise<"silent">((resolve) => setTimeout(() => resolve("silent"), ms));
        const result = await Promise.race([pending, quiet]);
        if (result === "silent") {
          abort.abort();
          await pending.catch(() => undefined);
        }
        return result;
      },
      cancel() {
        abort.abort();
      },
    };
  }

  it("Check reports the overall and per-service status", async () => {
    assert.equal((await client.check({})).status, Status.SERVING);
    assert.equal((await client.check({ service: SVC })).status, Status.SERVING);
  });

  it("Check of an unknown service fails with NOT_FOUND", async () => {
    await assert.rejects(client.check({ service: "nope.v1.Nope" }), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.NotFound);
      return true;
    });
  });

  it("List reports every known service", async () => {
    const res = await client.list({});
    assert.deepEqual(Object.keys(res.statuses).sort(), ["", SVC]);
    assert.equal(res.statuses[SVC].status, Status.SERVING);
  });

  it("Watch sends the current status, then each change once", async () => {
    const w = watch(SVC);
    assert.equal(await w.next(), Status.SERVING);
    state.set(SVC, "NOT_SERVING");
    assert.equal(await w.next(), Status.NOT_SERVING);
    assert.equal((await client.check({ service: SVC })).status, Status.NOT_SERVING);
    state.set(SVC, "NOT_SERVING"); // unchanged: no message
    state.set("other", "SERVING"); // another service: no message
    state.set(SVC, "SERVING");
    assert.equal(await w.next(), Status.SERVING);
    assert.equal(await w.nothingWithin(100), "silent");
  });

  it("Watch of an unknown service sends SERVICE_UNKNOWN and stays open until the service appears", async () => {
    const w = watch("later.v1.Later");
    assert.equal(await w.next(), Status.SERVICE_UNKNOWN);
    await new Promise((r) => setTimeout(r, 50));
    state.set("later.v1.Later", "SERVING");
    assert.equal(await w.next(), Status.SERVING);
    w.cancel();
  });

  it("close() ends open Watch streams", async () => {
    const a = watch("");
    const b = watch("unknown.v1.Unknown");
    assert.equal(await a.next(), Status.SERVING);
    assert.equal(await b.next(), Status.SERVICE_UNKNOWN);
    state.close();
    assert.equal(await a.next(), "end");
    assert.equal(await b.next(), "end");
    // Check still answers after close().
    assert.equal((await client.check({})).status, Status.SERVING);
  });
});
