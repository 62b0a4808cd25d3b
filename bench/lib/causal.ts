import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/**
 * Causal metadata for the fan-out's "seqcast-causal" row: the context of a
 * publisher active in BENCH_CAUSAL_DEPS other rooms (default 8, what the
 * SDK attaches at most with its default causalRooms), as the SDK keeps it
 * (src/client/causal-context.ts): the last position it saw in each room,
 * least recently active first.
 *
 * Every BENCH_CAUSAL_MOVE-th publish, one of those rooms has moved on (the
 * publisher received a message there): its position advances and goes to
 * the end of the list. So the subscribers' streams, which ask for compact
 * dependencies as the SDK does, get the publisher's context by index most
 * of the time and one position whole when it moves. 0: it never moves; 1:
 * it moves at every publish.
 *
 * The broker validates and stores the dependencies and sends them with every
 * delivery; the bench's subscribers skip them like any field they do not
 * read. Encoded once per change: PublishRequest.dependencies (field 6)
 * entries, tags included, appended to each request.
 */
export class BenchCausalContext {
  /** Room number and sequence, least recently active first. */
  private readonly positions: Array<{ room: number; sequence: bigint }>;
  private publishes = 0;
  private encoded: Uint8Array;
  /** Off: publishes carry no dependencies (the paired rounds' "off" phases). */
  on = true;

  constructor(
    rooms: number,
    private readonly moveEvery: number,
  ) {
    this.positions = Array.from({ length: rooms }, (_, i) => ({ room: i, sequence: 1_000_000n + BigInt(i) }));
    this.encoded = this.encode();
  }

  /** The dependencies of the next publish. */
  next(): Uint8Array | undefined {
    if (!this.on) return undefined;
    this.publishes++;
    if (this.moveEvery > 0 && this.positions.length > 0 && this.publishes % this.moveEvery === 0) {
      const moved = this.positions.shift()!;
      this.positions.push({ room: moved.room, sequence: moved.sequence + 1n });
      this.encoded = this.encode();
    }
    return this.encoded;
  }

  private encode(): Uint8Array {
    const w = new BinaryWriter();
    for (const { room, sequence } of this.positions)
      w.tag(6, WireType.LengthDelimited)
        .fork()
        .tag(1, WireType.LengthDelimited)
        .string(`bench.room${room}`)
        .tag(2, WireType.LengthDelimited)
        .string("8d4a5c2b9e7f1a30") // the shape of an epoch: 16 hex digits
        .tag(3, WireType.Varint)
        .uint64(sequence)
        .join();
    return w.finish();
  }
}
