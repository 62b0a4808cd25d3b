/**
 * grpc.health.v1.Health as a Connect service.
 *
 * Protocol: https://github.com/grpc/grpc/blob/master/doc/health-checking.md
 */
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as Status,
  type HealthCheckRequest,
} from "../../gen/es/grpc/health/v1/health_pb.js";

export type ServingStatus = "SERVING" | "NOT_SERVING";

export interface HealthState {
  set(service: string, status: ServingStatus): void;
  /** ends Watch streams */
  close(): void;
}

/**
 * Registers grpc.health.v1.Health (Check + Watch, and List) on the router.
 * "" is the overall server status. Unknown service -> Check returns NOT_FOUND
 * ConnectError; Watch sends SERVICE_UNKNOWN and keeps the stream open, per the
 * health protocol.
 */
export function registerHealth(router: ConnectRouter, initial: Record<string, ServingStatus>): HealthState {
  const statuses = new Map<string, ServingStatus>(Object.entries(initial));
  let closed = false;
  // Settled (and replaced) on every set() and on close(); a watcher takes the
  // current promise together with the status it reports, so a change made
  // while it is suspended in `yield` is never missed.
  let changed!: Promise<void>;
  let notify!: () => void;
  const rearm = () => {
    changed = new Promise<void>((resolve) => (notify = resolve));
  };
  rearm();
  const signalChange = () => {
    const fire = notify;
    rearm();
    fire();
  };

  const statusOf = (service: string): Status => {
    const s = statuses.get(service);
    return s === undefined ? Status.SERVICE_UNKNOWN : Status[s];
  };

  router.service(Health, {
    check(req: HealthCheckRequest) {
      const s = statuses.get(req.service);
      if (s === undefined) throw new ConnectError(`unknown service ${JSON.stringify(req.service)}`, Code.NotFound);
      return { status: Status[s] };
    },
    list() {
      const out: Record<string, { status: Status }> = {};
      for (const [service, s] of statuses) out[service] = { status: Status[s] };
      return { statuses: out };
    },
    async *watch(req: HealthCheckRequest, ctx: HandlerContext) {
      const { signal } = ctx;
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<void>((resolve) => {
        onAbort = () => resolve();
        signal.addEventListener("abort", onAbort, { once: true });
      });
      try {
        let sent: Status | undefined;
        for (;;) {
          const next = changed;
          const current = statusOf(req.service);
          if (current !== sent) {
            sent = current;
            yield { status: current };
          }
          if (closed || signal.aborted) return;
          await Promise.race([next, aborted]);
        }
      } finally {
        if (onAbort) signal.removeEventListener("abort", onAbort);
      }
    },
  });

  return {
    set(service, status) {
      if (statuses.get(service) === status) return;
      statuses.set(service, status);
      signalChange();
    },
    close() {
      if (closed) return;
      closed = true;
      signalChange();
    },
  };
}
