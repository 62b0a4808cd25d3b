import type { Engine, EngineOptions, MessageDraft, RetentionPolicy, RoomEvent } from "../../src/engine/engine.js";

/**
 * What the parts of the engine conformance suite (conformance-*.ts) share:
 * the harness an engine runs in, and the drafts and rooms the tests write.
 */
export interface EngineHarness {
  engine: Engine;
  events: Array<{ room: string; event: RoomEvent }>;
  clock: { now: number };
}

export type EngineFactory = (options: EngineOptions) => Promise<Engine> | Engine;

/**
 * A fresh, empty engine from the suite's factory, with its own clock and a
 * record of what it fanned out; the suite closes it after its tests.
 */
export type OpenHarness = (retention?: RetentionPolicy) => Promise<EngineHarness>;

/** What each part of the suite (conformance-*.ts) is given when it registers its tests. */
export interface ConformanceSuite {
  /**
   * The engine most tests share, as the suite ran before it was split into
   * parts. It is opened before the first test and filled in place, so a
   * part can take it at registration, before it is open.
   */
  h: EngineHarness;
  /** An engine of a test's own, for retention settings other than the shared one's. */
  open: OpenHarness;
}

/** What a multi-node engine promises beyond one node (see the "several nodes" tests). */
export interface SharedStore {
  /**
   * Engines from the factory share one store, as broker nodes on one Redis
   * do. A node that stops (closes without removing its presence entries, as
   * a killed process would) loses them within this many ms of the nodes' clock.
   */
  presenceTtlMs: number;
}

let roomCounter = 0;
/** Unique room names, so engines with shared storage (Redis) need no flush between tests. */
export const freshRoom = (label: string) => `conf.${label}.${process.pid}.${Date.now()}.${roomCounter++}`;

export const draft = (room: string, content: string, timeMs: number, sender = "alice"): MessageDraft => ({
  room,
  sender,
  content,
  payload: new Uint8Array([1, 2, 3]),
  attributes: { kind: "test" },
  timeMs,
  clientMessageId: `cm-${content}`,
});

export const presenceEntry = (sessionId: string, joinedAtMs: number) => ({
  user: "zoe",
  sessionId,
  device: "d",
  state: "online" as const,
  joinedAtMs,
  sinceMs: joinedAtMs,
  lastActiveMs: joinedAtMs,
});

/** The stored message of a publish (these tests never repeat a clientMessageId unless they say so). */
export async function publishMessage(engine: Engine, d: MessageDraft) {
  return (await engine.publish(d)).message;
}

/** Polls until `done` holds or the time is up; the test's assertion then says what was missing. */
export async function settle(done: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!done() && Date.now() - start < timeoutMs) await new Promise((r) => setTimeout(r, 5));
}
