/**
 * What the subscribers of one fan-out run saw, checked delivery by delivery:
 * per phase, how many messages each subscriber got; order (the broker's
 * sequence when the system has one, else the publisher's index); and the
 * publish→deliver latency of every delivery of the paced phases.
 */
import { percentile } from "./percentile.js";
import { payloadIndex, payloadSentAt } from "./payload.js";
import { waitFor } from "./util.js";

export interface PhaseSpec {
  name: string;
  /** Messages every subscriber must get in this phase. */
  messages: number;
  /** Record the latency of every delivery (paced phases). */
  latency: boolean;
}

export interface Violation {
  sub: number;
  expected: string;
  got: string;
  phase: string;
}

/** Latencies of one paced phase. */
class Latencies {
  readonly values: Float64Array;
  /** Send time of each sample, for per-second percentiles. */
  readonly sent: Float64Array;
  count = 0;
  start = 0;
  /** Publisher index of the phase's first message. */
  base = 0;
  /** Per message: latency at its first and at its last subscriber. */
  readonly first: Float64Array;
  readonly last: Float64Array;

  constructor(subscribers: number, messages: number) {
    this.values = new Float64Array(subscribers * messages);
    this.sent = new Float64Array(subscribers * messages);
    this.first = new Float64Array(messages).fill(Infinity);
    this.last = new Float64Array(messages).fill(-Infinity);
  }

  add(index: number, sentAt: number, latency: number): void {
    if (this.count >= this.values.length) return;
    this.sent[this.count] = sentAt;
    this.values[this.count++] = latency;
    const k = index - this.base;
    if (k >= 0 && k < this.first.length) {
      if (latency < this.first[k]!) this.first[k] = latency;
      if (latency > this.last[k]!) this.last[k] = latency;
    }
  }
}

export class FanoutTracker {
  private readonly lastIndex: Int32Array;
  private readonly lastSeq: Float64Array;
  private readonly counts: Int32Array[];
  private readonly dead: (string | undefined)[];
  private readonly latency: (Latencies | undefined)[];
  readonly doneAt: number[];
  private readonly done: number[];
  /** Deliveries with a broker sequence other than previous + 1. */
  seqViolations = 0;
  /** Deliveries whose publisher index is not previous + 1. */
  indexViolations = 0;
  readonly samples: Violation[] = [];

  constructor(
    readonly subscribers: number,
    readonly phases: PhaseSpec[],
    /** True when the system assigns sequences (then the publisher's index order is informative only). */
    readonly sequenced: boolean,
  ) {
    this.lastIndex = new Int32Array(subscribers).fill(-1);
    this.lastSeq = new Float64Array(subscribers).fill(NaN);
    this.counts = phases.map(() => new Int32Array(subscribers));
    this.dead = new Array<string | undefined>(subscribers).fill(undefined);
    this.latency = phases.map((p) => (p.latency ? new Latencies(subscribers, p.messages) : undefined));
    this.doneAt = phases.map(() => 0);
    this.done = phases.map(() => 0);
  }

  /** seqcast: the sequence the subscription starts after. */
  startAfter(sub: number, sequence: number): void {
    this.lastSeq[sub] = sequence;
  }

  /** Starts the clock of a paced phase whose first message has publisher index `base`. */
  startLatency(phase: number, start: number, base: number): void {
    const l = this.latency[phase];
    if (!l) return;
    l.start = start;
    l.base = base;
  }

  deliver(sub: number, payload: Uint8Array, recvTime: number, sequence?: number): void {
    const index = payloadIndex(payload);
    const phase = payload[4]!;
    const phaseName = this.phases[phase]?.name ?? `phase ${phase}`;
    if (sequence !== undefined) {
      const last = this.lastSeq[sub]!;
      if (sequence !== last + 1) {
        this.seqViolations++;
        this.sample({ sub, expected: `sequence ${Number.isNaN(last) ? "?" : last + 1}`, got: `sequence ${sequence}`, phase: phaseName });
      }
      this.lastSeq[sub] = sequence;
    }
    if (index !== this.lastIndex[sub]! + 1) {
      this.indexViolations++;
      if (!this.sequenced) this.sample({ sub, expected: `index ${this.lastIndex[sub]! + 1}`, got: `index ${index}`, phase: phaseName });
    }
    this.lastIndex[sub] = index;
    const latency = this.latency[phase];
    if (latency) {
      const sentAt = payloadSentAt(payload);
      latency.add(index, sentAt, recvTime - sentAt);
    }
    const counts = this.counts[phase];
    if (!counts) return;
    if (++counts[sub]! === this.phases[phase]!.messages) {
      this.done[phase]!++;
      this.doneAt[phase] = recvTime;
    }
  }

  fail(sub: number, reason: string): void {
    if (this.dead[sub] === undefined) this.dead[sub] = reason;
  }

  private sample(v: Violation): void {
    if (this.samples.length < 20) this.samples.push(v);
  }

  /** Every subscriber has all of `phase`, or is dead. */
  settled(phase: number): boolean {
    const target = this.phases[phase]!.messages;
    const counts = this.counts[phase]!;
    for (let s = 0; s < this.subscribers; s++) if (counts[s]! < target && this.dead[s] === undefined) return false;
    return true;
  }

  /** Waits until `phase` settled; true when every subscriber has all of it. */
  async waitPhase(phase: number, timeoutMs: number): Promise<boolean> {
    await waitFor(() => this.settled(phase), timeoutMs);
    return this.done[phase] === this.subscribers;
  }

  missing(phase?: number): number {
    let n = 0;
    for (const p of phase === undefined ? this.phases.keys() : [phase])
      for (let s = 0; s < this.subscribers; s++) n += Math.max(0, this.phases[p]!.messages - this.counts[p]![s]!);
    return n;
  }

  duplicates(): number {
    let n = 0;
    for (const [p, spec] of this.phases.entries()) for (let s = 0; s < this.subscribers; s++) n += Math.max(0, this.counts[p]![s]! - spec.messages);
    return n;
  }

  deadCount(): number {
    return this.dead.filter((d) => d !== undefined).length;
  }

  deadReasons(): string[] {
    return [...new Set(this.dead.filter((d): d is string => d !== undefined))];
  }

  expectedDeliveries(): number {
    return this.phases.reduce((sum, p) => sum + p.messages, 0) * this.subscribers;
  }

  /** Latency samples of a paced phase. */
  latencies(phase: number): Float64Array {
    const l = this.latency[phase];
    return l ? l.values.subarray(0, l.count) : new Float64Array(0);
  }

  /** p50 latency of the messages sent in each second of a paced phase. */
  p50BySecond(phase: number, seconds: number): number[] {
    const l = this.latency[phase];
    if (!l) return [];
    const buckets: number[][] = Array.from({ length: seconds }, () => []);
    for (let i = 0; i < l.count; i++) {
      const second = Math.min(seconds - 1, Math.max(0, Math.floor((l.sent[i]! - l.start) / 1000)));
      buckets[second]!.push(l.values[i]!);
    }
    return buckets.map((b) => percentile(Float64Array.from(b).sort(), 50));
  }

  /** p50 over a paced phase's messages of the latency at each message's first / last subscriber. */
  firstLastP50(phase: number): [number, number] {
    const l = this.latency[phase];
    if (!l) return [NaN, NaN];
    const finite = (a: Float64Array) => Float64Array.from(a.filter((v) => Number.isFinite(v))).sort();
    return [percentile(finite(l.first), 50), percentile(finite(l.last), 50)];
  }
}
