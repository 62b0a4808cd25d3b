import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/**
 * Causal metadata for the fan-out's "seqcast-causal" row: every publish
 * carries BENCH_CAUSAL_DEPS dependencies (default 8, what the SDK attaches
 * at most with its default causalRooms), as a publisher active in that many
 * other rooms would send them. The broker validates and stores them and
 * sends them with every delivery; the bench's subscribers skip them like
 * any field they do not read. Encoded once: PublishRequest.dependencies
 * (field 6) entries, tags included, appended to each request.
 */
export function encodedDependencies(n: number): Uint8Array {
  const w = new BinaryWriter();
  for (let i = 0; i < n; i++)
    w.tag(6, WireType.LengthDelimited)
      .fork()
      .tag(1, WireType.LengthDelimited)
      .string(`bench.room${i}`)
      .tag(2, WireType.LengthDelimited)
      .string("8d4a5c2b9e7f1a30") // the shape of an epoch: 16 hex digits
      .tag(3, WireType.Varint)
      .uint64(1_000_000n + BigInt(i))
      .join();
  return w.finish();
}
