/** The report's caveats: what the numbers do and do not say. */
import { P } from "./params.js";

export function caveats(cores: number): string[] {
  return [
    `- **Noise.** This is a shared ${cores}-core machine: other workloads come and go (Details gives the CPU other processes used during every measured phase, and the load average is under Machine). ` +
      "Compare within one run, not across runs; a row whose \"other processes\" figure is well above 0 is suspect.",
    `- **One load generator.** Every client (the publisher and all subscribers) runs in one Node process that shares the ${cores} cores with the server under test. ` +
      "Where that process's event loop is ≥ 90% busy (Details, and *bench-bound* in the tables) the number is a lower bound set by the bench, not by the server: typical for NATS and Redis flat out. " +
      "(On a loaded machine the event loop's busy share also counts time spent waiting for a core, so compare it with the bench's CPU figure.) " +
      "It also means a faster server leaves less CPU to the clients that measure it.",
    "- **The lean seqcast client.** The peers' clients hand the bench the payload bytes of each delivery (nats.js `msg.data`, ioredis `messageBuffer`) without decoding anything else. " +
      "The seqcast SDK (connect-node + protobuf-es) decodes each delivery into a full `Message` object, which made the one load-generator process the bottleneck (100% busy while the broker idled). " +
      "So the bench drives seqcast with bench/lean-client.ts: HTTP/2 and gRPC framing by hand on a socket of its own (bench/lib/h2-framer.ts, as nats.js and ioredis hold theirs), and a protobuf walker that reads only a message's sequence and payload, the equivalent of what nats.js does per message. " +
      "It speaks the same wire protocol as every other client, so the broker's work is identical; only the client's is smaller. " +
      "(Until 2026-12-03 it ran on node:http2's client, whose nghttp2 and C++ boundary cost the load generator ~9 µs per delivery: runs before then had less CPU left for the clients measuring seqcast.)",
    `- **Windows.** Every publisher has at most a window of messages unacknowledged (fan-out ${P.window}, ingest and rooms ${P.ingestWindow}), whatever the system calls an acknowledgement: ` +
      "a PublishStream result or a unary response (seqcast), a JetStream ack, the PONG of a flush (NATS core: the server has processed the messages, not delivered them), the replies of a pipeline (Redis). " +
      `seqcast and JetStream acknowledge every message; NATS core and Redis in groups (a flush or a pipeline per quarter window in fan-out, a flush per ${P.ingestBatch} in ingest), so their windows slide in steps. ` +
      `In ingest, seqcast's stream publisher packs up to ${P.ingestBatch} messages into one PublishStream request (one HTTP/2 DATA frame, each message still sequenced, stored and acknowledged on its own); ` +
      "nats.js likewise coalesces many PUBs into one socket write. The *stream, batch 1* row shows the cost of one message per request.",
    "- **JetStream's publishers.** nats.js's `js.publish()` costs the one Node process far more per message than the server spends on it (it makes a request with its own timer and promise and JSON-decodes every ack), " +
      "so its row measures nats.js more than nats-server. The ingest scenario therefore also runs a lean JetStream publisher on a socket of its own (bench/drivers/jetstream-raw.ts: an HPUB with a reply subject and a Nats-Msg-Id per message, as many per socket write as seqcast's stream publisher packs into a request, the ack's sequence read by a minimal parser; until 2026-12-03 it went through nats.js's publish(), which held it to ~0.8 of what the server takes) " +
      "and compares seqcast with the faster of the two. A Go client (`nats bench --js`) would load the machine differently again; the server-side CPU per publish (µs CPU/publish) is the figure least tied to the client.",
    "- **What each system does per message.** NATS core and Redis pub/sub are at-most-once: no sequence, no history, no per-message acknowledgement, and a slow subscriber is dropped. " +
      "seqcast sequences every message in its room, keeps it in the room's history (memory, or SQLite), records its client_message_id for deduplication (every bench publish carries one, a random UUID as the SDK makes them; PublishStream requires it), " +
      "acknowledges it with its position, and delivers a message with id, room, epoch, sequence, sender, time and client_message_id. " +
      "JetStream stores every message in its file store and acknowledges it with the stream sequence; every bench publish carries a `Nats-Msg-Id` (a random UUID), so JetStream deduplicates within its duplicate window (2 minutes by default) like seqcast does.",
    "- **Durability, JetStream vs seqcast-sqlite.** JetStream's file store acknowledges a message once it is written to its block file (the OS page cache) and fsyncs periodically " +
      "(`sync_interval`, 2 minutes by default per the NATS docs; not per message). seqcast-sqlite runs SQLite in WAL mode with `synchronous=NORMAL` (`seqcast serve`'s default): a group commit is written to the WAL " +
      "before its publishes are acknowledged, and fsynced at checkpoints, not per commit. Both survive a crash of the server process (kill -9) without losing an acknowledged message; neither promises to survive " +
      "a power loss or kernel crash with its defaults (JetStream: `sync_interval: always`; seqcast: `--sync full`). So the ingest comparison is like for like; seqcast-memory has no durability at all.",
    "- **JetStream's subscribers.** In the ingest rows with subscribers, JetStream's subscribers are " +
      (P.jsSubscribers === "ordered"
        ? "ordered push consumers (per-subscriber consumer state, flow control, stream sequence on every message)."
        : "core NATS subscriptions on the stream's subject: the live fan-out path that seqcast's Subscribe also takes (seqcast reads its store only to replay). Ordered push consumers (BENCH_JS_SUBSCRIBERS=ordered) would add per-subscriber consumer state and flow control on the server."),
    `- **Paced rates.** The paced phases (${P.rate} and ${P.rateHigh} msg/s × ${P.subscribers} subscribers) must stay below what the broker and the bench process can sustain, or they measure queueing. ` +
      "At a paced rate there are no bursts to batch, so seqcast pays its per-stream, per-message cost in full (compare its broker CPU flat out and paced).",
    "- **Latency includes the subscriber side.** All subscribers decode their deliveries on the bench process's one event loop, so a message's last subscriber waits for the others; " +
      "Details gives the p50 at each message's first and last subscriber. The same holds for every system.",
    "- **Servers.** nats-server and redis-server are native (nats-server multi-threaded); the seqcast broker is one Node event loop (plus libuv and V8 helper threads, whose CPU counts in its CPU time). " +
      "nats-server and redis-server are the machine's shared instances: their RSS includes whatever else they hold, so the idle-sessions scenario compares NATS by its RSS increase.",
    "- **CPU resolution.** A server's CPU time is its threads' run time from /proc (schedstat, nanoseconds), or its clock ticks (10 ms) where a thread exited during a phase; the load generator's is process.cpuUsage().",
    "- **Profiles.** The CPU profile is a sampling profile of a separate paced phase; the profiler costs some CPU, which is why no measured number comes from that phase. " +
      "The \"before\" profile was recorded in an earlier run (maybe under other load) with the pre-rewrite broker driven by unary Publish, because PublishStream does not exist there; compare shares and ms per 1,000 deliveries, not absolute ms. " +
      "`(program)` is time in native code V8 cannot attribute to a JS function (node:http2's nghttp2, libuv writes) and, on a loaded machine, samples taken while the broker waited for a core, so its share grows with the neighbours' load.",
  ];
}
