import assert from "node:assert/strict";
import type { vi } from "vitest";
import { Broker } from "../../src/broker/broker.js";
import { BrokerError } from "../../src/broker/errors.js";
import { defaultBrokerConfig, type BrokerConfig } from "../../src/broker/config.js";
import type { Identity } from "../../src/broker/identity.js";
import type { Session, SessionEvent } from "../../src/broker/session.js";
import { createMemoryEngine } from "../../src/engine/memory.js";

/** A broker in this process, without transport: what unit tests drive. */
export function inProcessBroker(config: Partial<BrokerConfig> = {}): Broker {
  return new Broker({ config: { ...defaultBrokerConfig, ...config }, engine: createMemoryEngine });
}

export const user = (name: string, extra: Partial<Identity> = {}): Identity => ({ user: name, admin: false, ...extra });

/** Everything a session's stream would carry, accumulated across drains. */
export class Stream {
  readonly events: SessionEvent[] = [];
  constructor(readonly session: Session) {}

  /** Takes what the session queued since the last read. */
  read(): SessionEvent[] {
    const fresh = this.session.drain();
    this.events.push(...fresh);
    return fresh;
  }

  /** Event types read so far, with the room or content that tells them apart: `message:general:hi`. */
  summary(): string[] {
    this.read();
    return this.events.flatMap((e) => {
      switch (e.type) {
        case "message":
          return `message:${e.message.room}:${e.message.content}`;
        case "presence":
          return `presence:${e.room}:${e.kind}:${e.entry.user}`;
        case "subscribed":
          return `subscribed:${e.room}:${e.recovered}`;
        case "session_started":
          return "session_started";
        case "heartbeat":
          return "heartbeat";
        case "presence_changes":
          return e.changes.map((c) => `presence:${e.room}:${c.kind}:${c.entry.user}`);
        case "unsubscribed":
        case "reset":
        case "watermark":
          return `${e.type}:${e.room}`;
      }
    });
  }

  messages(room?: string): string[] {
    this.read();
    return this.events.flatMap((e) => (e.type === "message" && (!room || e.message.room === room) ? [e.message.content] : []));
  }
}

/** Lets pending promise callbacks run (engine calls are async even in memory). */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Only timers and Date are faked; setImmediate stays real so promise chains settle. */
export const FAKE_TIMERS: Parameters<typeof vi.useFakeTimers>[0] = { toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] };

/** The BrokerError a call throws (synchronously or as a rejection). */
export async function failure(call: () => unknown): Promise<BrokerError> {
  try {
    await call();
  } catch (error) {
    assert.ok(error instanceof BrokerError, `a BrokerError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a BrokerError");
}
