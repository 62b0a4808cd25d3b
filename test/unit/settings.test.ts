import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "vitest";
import { defaultBrokerConfig } from "../../src/broker/config.js";
import { formatDuration, parseBytes, parseDuration } from "../../src/cli/parse.js";
import { parseServeArgs } from "../../src/cli/serve.js";
import { replaceSettingsBlock } from "../../src/cli/settings-docs.js";
import { SETTINGS } from "../../src/cli/settings.js";
import { UsageError } from "../../src/cli/usage-error.js";

describe("the settings table of seqcast serve", () => {
  it("is what the README's configuration table shows (npm run docs:settings rewrites it)", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    assert.equal(replaceSettingsBlock(readme), readme, "README.md is stale: run npm run docs:settings");
  });

  it("defaults to the broker's defaults, reads the environment, and lets flags win", () => {
    const defaults = parseServeArgs([], {})!;
    assert.deepEqual(defaults.broker, defaultBrokerConfig);
    assert.deepEqual([defaults.port, defaults.engine, defaults.dataDir], [8080, "sqlite", "./data"]);
    const fromEnv = parseServeArgs([], { SEQCAST_HISTORY_TTL: "15m", SEQCAST_PRESENCE_GRACE: "2s", PORT: "9000", SEQCAST_ENGINE: "" })!;
    assert.deepEqual([fromEnv.broker.historyTtlMs, fromEnv.broker.presenceGraceMs, fromEnv.port, fromEnv.engine], [900_000, 2000, 9000, "sqlite"]);
    const flags = parseServeArgs(["--history-ttl", "1h", "--ping-interval", "0", "--dead-timeout", "3s"], { SEQCAST_HISTORY_TTL: "15m" })!;
    assert.deepEqual([flags.broker.historyTtlMs, flags.broker.pingIntervalMs, flags.broker.deadTimeoutMs], [3_600_000, 0, 3000]);
  });

  it("reads the redis engine's settings and --workers", () => {
    const defaults = parseServeArgs([], {})!;
    assert.deepEqual(
      [defaults.redisUrl, defaults.redisPrefix, defaults.redisPresenceTtlMs, defaults.workers],
      ["redis://127.0.0.1:6379", "seqcast:", 15_000, 1],
    );
    const set = parseServeArgs(["--engine", "redis", "--workers", "0", "--redis-prefix", "chat:"], {
      SEQCAST_REDIS_URL: "redis://:secret@redis:6380/2",
      SEQCAST_REDIS_PRESENCE_TTL: "5s",
    })!;
    assert.deepEqual(
      [set.engine, set.workers, set.redisPrefix, set.redisUrl, set.redisPresenceTtlMs],
      ["redis", 0, "chat:", "redis://:secret@redis:6380/2", 5000],
    );
  });

  it("gives every environment variable a flag, and every setting one help line", () => {
    assert.equal(new Set(SETTINGS.map((s) => s.env)).size, SETTINGS.length);
    for (const env of ["SEQCAST_PING_INTERVAL", "SEQCAST_DEAD_TIMEOUT", "SEQCAST_PRESENCE_GRACE", "SEQCAST_PUBLISH_BURST"])
      assert.ok(SETTINGS.some((s) => s.env === env), env);
  });

  it("refuses bad values with a UsageError naming the flag or variable", () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [["--port", "x"], {}, /--port: "x" is not a port number/],
      [["--history-size", "0"], {}, /--history-size: "0" is not a positive integer/],
      [["--history-ttl", "soon"], {}, /--history-ttl: "soon" is not a duration/],
      [["--engine", "mongo"], {}, /--engine: "mongo" is not one of sqlite, memory/],
      [[], { SEQCAST_MAX_MESSAGE_BYTES: "lots" }, /SEQCAST_MAX_MESSAGE_BYTES: "lots" is not a size/],
      [["--frobnicate"], {}, /^unknown option --frobnicate; see 'seqcast serve --help'$/],
      [["--port"], {}, /^--port needs a value; see 'seqcast serve --help'$/],
      [["8080"], {}, /^unexpected argument '8080'; options start with --/],
      [["--dev-login=maybe"], {}, /--dev-login/],
      [[], { SEQCAST_DEV_LOGIN: "maybe" }, /SEQCAST_DEV_LOGIN: "maybe" is not on or off/],
      [["--redis-url", "127.0.0.1:6379"], {}, /--redis-url: "127.0.0.1:6379" is not a URL \(use e.g. redis:\/\/127.0.0.1:6379\)/],
      [[], { SEQCAST_REDIS_URL: "http://cache:6379" }, /SEQCAST_REDIS_URL: "http:\/\/cache:6379" is not a redis:\/\/ or rediss:\/\/ URL/],
      [["--redis-presence-ttl", "0"], {}, /--redis-presence-ttl: "0" must be longer than 0/],
      [["--workers=-1"], {}, /--workers: "-1" is not a whole number >= 0/],
      // Several processes need an engine they can share.
      [["--workers", "2"], {}, /--workers 2 needs --engine redis: the sqlite engine keeps rooms in one process/],
      [["--workers", "0", "--engine", "memory"], {}, /--workers 0 needs --engine redis: the memory engine/],
    ];
    for (const [argv, env, message] of cases)
      assert.throws(() => parseServeArgs(argv, env), (error: unknown) => error instanceof UsageError && message.test(error.message));
    assert.equal(parseServeArgs(["--help"], {}), undefined);
  });

  it("takes switches without a value: --dev-login, or SEQCAST_DEV_LOGIN=1", () => {
    assert.equal(parseServeArgs([], {})!.devLogin, false);
    assert.equal(parseServeArgs(["--dev-login"], {})!.devLogin, true);
    assert.equal(parseServeArgs([], { SEQCAST_DEV_LOGIN: "1" })!.devLogin, true);
    assert.equal(parseServeArgs([], { SEQCAST_DEV_LOGIN: "off" })!.devLogin, false);
  });

  it("parses and prints durations and sizes", () => {
    assert.deepEqual(["500ms", "30s", "15m", "24h", "7d", "2.5", "0"].map((t) => parseDuration(t, "d")), [500, 30_000, 900_000, 86_400_000, 604_800_000, 2500, 0]);
    assert.deepEqual([86_400_000, 120_000, 1500, 0, 7 * 86_400_000].map(formatDuration), ["24h", "2m", "1500ms", "0", "7d"]);
    assert.deepEqual(["65536", "64KiB", "1mb", "2GiB"].map((t) => parseBytes(t, "b")), [65536, 65536, 1048576, 2147483648]);
  });
});
