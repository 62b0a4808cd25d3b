import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, test } from "vitest";
import { LatencyHistogram, LATENCY_BUCKETS } from "../../src/broker/stats.js";
import { resolveSettings } from "../../src/cli/settings.js";
import { createLogger, prettyLine, type LogFormat, type LogLevel } from "../../src/log/logger.js";
import { LogThrottle } from "../../src/log/throttle.js";

/** A stream that keeps what was written, posing as a terminal or not. */
function sink(isTTY: boolean): Writable & { isTTY: boolean; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  }) as Writable & { isTTY: boolean; text: () => string };
  stream.isTTY = isTTY;
  stream.text = () => text;
  return stream;
}

function logTo(level: LogLevel, format: LogFormat, isTTY = false) {
  const out = sink(isTTY);
  return { out, logger: createLogger({ level, format, stream: out }) };
}

describe("logs", () => {
  test("JSON lines: level, time, pid, the event's fields and msg last", () => {
    const { out, logger } = logTo("info", "json");
    logger.info({ url: "http://127.0.0.1:8080", port: 8080 }, "seqcast listening");
    const [line, rest] = out.text().split("\n");
    assert.equal(rest, "");
    const record = JSON.parse(line!);
    assert.deepEqual([record.level, record.url, record.port, record.msg, record.pid], [30, "http://127.0.0.1:8080", 8080, "seqcast listening", process.pid]);
    assert.equal(typeof record.time, "number");
    assert.match(line!, /"msg":"seqcast listening"}$/);
  });

  test("--log-level writes that level and the more severe ones only", () => {
    const { out, logger } = logTo("warn", "json");
    logger.debug("session opened");
    logger.info("seqcast listening");
    logger.warn("slow consumer cut off");
    logger.error("internal error");
    assert.deepEqual(out.text().trim().split("\n").map((l) => JSON.parse(l).msg), ["slow consumer cut off", "internal error"]);
    const quiet = logTo("silent", "json");
    quiet.logger.fatal("nothing");
    assert.equal(quiet.out.text(), "");
    const chatty = logTo("trace", "json");
    chatty.logger.trace("everything");
    assert.equal(JSON.parse(chatty.out.text()).level, 10);
  });

  test("pretty lines on a terminal (auto), JSON elsewhere", () => {
    const terminal = logTo("info", "auto", true);
    terminal.logger.warn({ user: "ann", queued_events: "50" }, "slow consumer cut off");
    assert.match(terminal.out.text(), /^\d{2}:\d{2}:\d{2}\.\d{3} \x1b\[33mWARN \x1b\[0m slow consumer cut off user=ann queued_events=50\n$/);
    const piped = logTo("info", "auto", false);
    piped.logger.warn({ user: "ann" }, "slow consumer cut off");
    assert.equal(JSON.parse(piped.out.text()).user, "ann");
    const forced = logTo("info", "pretty", false);
    forced.logger.info("seqcast stopped");
    assert.match(forced.out.text(), /^\d{2}:\d{2}:\d{2}\.\d{3} INFO  seqcast stopped\n$/, "no colours off a terminal");
  });

  test("the pretty form: bare words, JSON for the rest, an error's stack below its line", () => {
    const time = new Date(2026, 0, 2, 3, 4, 5, 67).getTime();
    const line = JSON.stringify({ level: 40, time, pid: 1, hostname: "h", engine: "redis", reason: "connection refused", config: { a: 1 }, msg: "engine unavailable" });
    assert.equal(prettyLine(line), '03:04:05.067 WARN  engine unavailable engine=redis reason="connection refused" config={"a":1}');
    const bug = JSON.stringify({ level: 50, time, err: { type: "TypeError", message: "x is undefined", stack: "TypeError: x is undefined\n    at f (a.ts:1:1)" }, msg: "internal error" });
    assert.equal(prettyLine(bug), '03:04:05.067 ERROR internal error err="x is undefined"\nTypeError: x is undefined\n    at f (a.ts:1:1)');
    assert.equal(prettyLine("not json\n"), "not json");
  });

  test("a throttle logs the first few events of each interval and then says how many it left out", () => {
    let now = 0;
    const throttle = new LogThrottle(2, 1000, () => now);
    const logged: number[] = [];
    for (let i = 0; i < 5; i++) throttle.run((suppressed) => logged.push(suppressed));
    assert.deepEqual(logged, [0, 0]);
    now = 999;
    throttle.run((suppressed) => logged.push(suppressed));
    assert.deepEqual(logged, [0, 0]);
    now = 1000;
    throttle.run((suppressed) => logged.push(suppressed));
    throttle.run((suppressed) => logged.push(suppressed));
    assert.deepEqual(logged, [0, 0, 4, 0]);
  });

  test("--log-level and --log-format refuse words they do not know, naming the flag", () => {
    assert.equal(resolveSettings({ "log-level": "debug" }, {}).logLevel, "debug");
    assert.equal(resolveSettings({}, { SEQCAST_LOG_FORMAT: "json" }).logFormat, "json");
    assert.throws(() => resolveSettings({ "log-level": "loud" }, {}), /--log-level: "loud" is not one of trace, debug, info, warn, error, fatal, silent/);
    assert.throws(() => resolveSettings({ "log-format": "xml" }, {}), /--log-format/);
    assert.equal(resolveSettings({ metrics: "off" }, {}).metrics, false);
    assert.equal(resolveSettings({}, {}).metrics, true);
  });
});

describe("latency histogram", () => {
  test("counts each observation in the first bucket whose bound it does not exceed, weighted for batches", () => {
    const h = new LatencyHistogram();
    h.observe(0.00005);
    h.observe(0.001); // on a bound: that bucket (le = less or equal)
    h.observe(0.0011, 3);
    h.observe(60);
    const at = (bound: number) => h.counts[LATENCY_BUCKETS.indexOf(bound as never)];
    assert.deepEqual([at(0.0001), at(0.001), at(0.0025), h.counts[LATENCY_BUCKETS.length]], [1, 1, 3, 1]);
    assert.equal(h.count, 6);
    assert.ok(Math.abs(h.sum - (0.00005 + 0.001 + 0.0033 + 60)) < 1e-12);
  });
});
