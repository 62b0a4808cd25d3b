/**
 * What the bench knows about processes, all from /proc: RSS and CPU time of
 * a server, busy time of the whole machine (to show what other workloads
 * took during a phase), and the pids and versions of the peer servers.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import { performance } from "node:perf_hooks";

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
} catch {
  /* keep 100 */
}

/**
 * A process and its descendants (`seqcast serve --workers N` is a primary and
 * N workers): a server's RSS and CPU are those of its whole tree.
 */
export function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${pids[i]}/task`)) {
        const children = readFileSync(`/proc/${pids[i]}/task/${task}/children`, "utf8").trim();
        if (children) pids.push(...children.split(" ").map(Number));
      }
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

const sumOverTree = (pid: number | undefined, of: (pid: number) => number | undefined): number | undefined => {
  if (!pid) return undefined;
  let total: number | undefined;
  for (const p of processTree(pid)) {
    const value = of(p);
    if (value !== undefined) total = (total ?? 0) + value;
  }
  return total;
};

/** RSS of a server: of its process and its descendants. */
export function rssBytes(pid: number | undefined): number | undefined {
  return sumOverTree(pid, rssOfProcess);
}

function rssOfProcess(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export const MiB = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / 2 ** 20);

/**
 * CPU seconds of a server's process and its descendants: the time its
 * threads ran, in nanoseconds (/proc/PID/task/TID/schedstat), where
 * /proc/PID/stat counts clock ticks (10 ms). A phase of the rooms scenario
 * uses ~0.2 s of the broker's CPU, so a tick either way was ±5% of a phase
 * and ±10% of a pair's ratio. Threads that exit are not counted (Node's,
 * nats-server's and Redis's live as long as the process): cpuWindow falls
 * back to the ticks when the two disagree by more than the ticks' error.
 */
export function cpuSeconds(pid: number | undefined): number | undefined {
  return cpuTimes(pid)?.seconds;
}

/** Both measures of a process tree's CPU, read in one walk of it, and how many processes it has. */
function cpuTimes(pid: number | undefined): { seconds: number; ticks: number; processes: number } | undefined {
  if (!pid) return undefined;
  const times = { seconds: 0, ticks: 0, processes: 0 };
  for (const p of processTree(pid)) {
    const ticks = ticksOfProcess(p);
    if (ticks === undefined) continue; // gone meanwhile
    times.ticks += ticks;
    times.seconds += runTimeOfProcess(p) ?? ticks;
    times.processes++;
  }
  return times.processes > 0 ? times : undefined;
}

function ticksOfProcess(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return undefined;
  }
}

function runTimeOfProcess(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    return Number.isFinite(ns) ? ns / 1e9 : undefined;
  } catch {
    return undefined;
  }
}

/** Busy and total jiffies of the whole machine (all CPUs), from /proc/stat. */
function machineJiffies(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest is included in user)
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** CPU used during one measured window. */
export interface CpuUse {
  seconds: number;
  /** Server process CPU, % of one core. */
  server?: number;
  /** Server process CPU seconds. */
  serverSeconds?: number;
  /** This process (the load generator), % of one core. */
  bench: number;
  /** This process's event loop busy, %. */
  benchLoop: number;
  /** Everything else on the machine, in cores. */
  otherCores?: number;
}

/** Starts measuring the CPU of the server, of this process and of the rest of the machine; call the result to stop. */
export function cpuWindow(serverPid: number | undefined): () => CpuUse {
  const start = performance.now();
  const machine0 = machineJiffies();
  const server0 = cpuTimes(serverPid);
  const self0 = process.cpuUsage();
  const loop0 = performance.eventLoopUtilization();
  return () => {
    const wall = (performance.now() - start) / 1000;
    const server1 = cpuTimes(serverPid);
    const self = process.cpuUsage(self0);
    const machine1 = machineJiffies();
    const selfSeconds = (self.user + self.system) / 1e6;
    let serverSeconds: number | undefined;
    if (server0 && server1) {
      serverSeconds = server1.seconds - server0.seconds;
      // A thread that exited in the window took its run time with it; the ticks keep it (their error: a tick at each end, per process).
      const ticks = server1.ticks - server0.ticks;
      if (ticks - serverSeconds > (2 * server1.processes + 1) / clockTicks) serverSeconds = ticks;
    }
    const use: CpuUse = {
      seconds: wall,
      bench: (selfSeconds / wall) * 100,
      benchLoop: performance.eventLoopUtilization(loop0).utilization * 100,
    };
    if (serverSeconds !== undefined) {
      use.serverSeconds = serverSeconds;
      use.server = (serverSeconds / wall) * 100;
    }
    if (machine0 && machine1)
      use.otherCores = Math.max(0, ((machine1.busy - machine0.busy) / clockTicks - selfSeconds - (serverSeconds ?? 0)) / wall);
    return use;
  };
}

/** Peak RSS of a process, sampled every 50 ms until stopped. */
export function rssPeak(pid: number | undefined): () => number | undefined {
  let peak = rssBytes(pid) ?? 0;
  const timer = setInterval(() => {
    const rss = rssBytes(pid);
    if (rss !== undefined && rss > peak) peak = rss;
  }, 50);
  return () => {
    clearInterval(timer);
    const rss = rssBytes(pid);
    if (rss !== undefined && rss > peak) peak = rss;
    return peak > 0 ? peak : undefined;
  };
}

/** The pid of a server process, preferring one whose command line names `port`. */
export function findPid(name: string, port: number): number | undefined {
  try {
    const lines = execFileSync("pgrep", ["-a", "-x", name], { encoding: "utf8" }).trim().split("\n").filter(Boolean);
    const withPort = lines.find((l) => l.includes(String(port)));
    const line = withPort ?? (lines.length === 1 ? lines[0] : undefined);
    return line ? Number(line.split(" ")[0]) : undefined;
  } catch {
    return undefined;
  }
}

export function binaryVersion(command: string): string {
  try {
    return execFileSync(command, ["--version"], { encoding: "utf8", timeout: 5000 }).trim().split("\n")[0]!;
  } catch {
    return "unknown";
  }
}

export async function reachable(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
