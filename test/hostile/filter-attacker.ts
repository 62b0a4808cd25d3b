/**
 * The attacker of test/hostile/filters.test.ts, in a process of its own so
 * that its client-side work (encoding 3.5 MB Subscribe requests, decoding
 * thousands of errors) does not slow the canary in the test process: the
 * canary then measures the broker alone.
 *
 *   node --import tsx test/hostile/filter-attacker.ts URL < PLAN_JSON
 *
 * The plan (on stdin: 3,500 filters do not fit an argument): { ms, requests: [{ kind: "subscribe", rooms } | { kind: "history", room, filter, limit? }] };
 * one worker per request runs it back to back for `ms`. Prints "attacking", then one JSON line:
 * { outcomes: { "<code> <reason> <limit>": count }, samples: { …: message }, pages: [messages per page] }.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/es/google/rpc/error_details_pb.js";
import { clientFor } from "../support/broker.js";

export type AttackRequest =
  | { kind: "subscribe"; rooms: Array<{ room: string; filter?: string }> }
  | { kind: "history"; room: string; filter: string; limit?: number }
  /** A subscription held open for the whole attack (its filter is evaluated on every publish). */
  | { kind: "hold"; rooms: Array<{ room: string; filter?: string }> }
  /** Publishes of `bytes` of content, once every hold is subscribed. */
  | { kind: "publish"; room: string; bytes: number };

export interface AttackPlan {
  ms: number;
  /** Pause of each worker between requests: the attacker shares the machine's cores with the broker it attacks. */
  pauseMs?: number;
  requests: AttackRequest[];
}

export interface AttackResult {
  outcomes: Record<string, number>;
  samples: Record<string, string>;
  pages: number[];
}

async function main(): Promise<void> {
  const url = process.argv[2];
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const plan = JSON.parse(input) as AttackPlan;
  const client = clientFor(url!, "mallory");
  const result: AttackResult = { outcomes: {}, samples: {}, pages: [] };
  // The test starts its canary on this line, so it measures the attack, not this process starting.
  process.stdout.write("attacking\n");
  const until = performance.now() + plan.ms;
  const holding: Array<() => void> = [];
  const held = Promise.all(plan.requests.filter((r) => r.kind === "hold").map(() => new Promise<void>((resolve) => holding.push(resolve))));
  const abort = new AbortController();
  const count = (key: string, message: string) => {
    result.outcomes[key] = (result.outcomes[key] ?? 0) + 1;
    result.samples[key] ??= message;
  };
  await Promise.all(
    plan.requests.map(async (request) => {
      while (performance.now() < until) {
        try {
          if (request.kind === "hold") {
            const subscribed = holding.pop() ?? (() => {});
            const timer = setTimeout(() => abort.abort(), Math.max(0, until - performance.now()));
            try {
              for await (const _ of client.rpc.subscribe({ rooms: request.rooms }, { signal: abort.signal })) subscribed();
            } catch (error) {
              subscribed();
              if (!abort.signal.aborted) throw error;
            } finally {
              clearTimeout(timer);
            }
            count("held", "");
          } else if (request.kind === "publish") {
            await held;
            await client.rpc.publish({ room: request.room, content: "ab".repeat(request.bytes / 2) }, { timeoutMs: 20_000 });
            count("published", "");
          } else if (request.kind === "subscribe") {
            for await (const _ of client.rpc.subscribe({ rooms: request.rooms }, { timeoutMs: 20_000 })) break;
            count("accepted", "");
          } else {
            const page = await client.rpc.getHistory({ room: request.room, filter: request.filter, limit: request.limit ?? 0 }, { timeoutMs: 20_000 });
            result.pages.push(page.messages.length);
          }
        } catch (error) {
          const e = ConnectError.from(error);
          const info = e.findDetails(ErrorInfoSchema)[0];
          count(`${Code[e.code]} ${info?.reason ?? "-"} ${info?.metadata.limit ?? "-"} ${info?.metadata.field ?? "-"}`, e.rawMessage);
        }
        if (plan.pauseMs) await new Promise((resolve) => setTimeout(resolve, plan.pauseMs));
      }
    }),
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
