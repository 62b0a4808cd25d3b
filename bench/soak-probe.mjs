// Preloaded into the broker by bench/soak.ts (`node --import`): every
// SOAK_PROBE_MS it prints one line on stderr with the event loop's delay
// (p99 and max since the last line) and the process's RSS and heap, so the
// soak can chart them from outside without changing the broker.
import { monitorEventLoopDelay } from "node:perf_hooks";

const every = Number(process.env.SOAK_PROBE_MS) || 5000;
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
setInterval(() => {
  const memory = process.memoryUsage();
  const line = {
    soakProbe: {
      loopP99Ms: delay.percentile(99) / 1e6,
      loopMaxMs: delay.max / 1e6,
      rssBytes: memory.rss,
      heapBytes: memory.heapUsed,
    },
  };
  delay.reset();
  process.stderr.write(`${JSON.stringify(line)}\n`);
}, every).unref();
