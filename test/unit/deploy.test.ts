import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "vitest";
import { parseServeArgs } from "../../src/cli/serve.js";

/**
 * The image runs the very command the tests run (test/support/processes.ts:
 * `node bin/seqcast.js serve …`), and every service of docker-compose.yml
 * passes it arguments `seqcast serve` accepts. (CI validates the compose file
 * itself with `docker-compose config -q`.)
 */
const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), "utf8");
const instruction = (dockerfile: string, name: string): string[] => {
  const line = dockerfile.split("\n").find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} in the Dockerfile`);
  return JSON.parse(line.slice(name.length + 1)) as string[];
};

describe("deployment files", () => {
  it("the image's command is `node bin/seqcast.js serve`, as a spawned test broker", () => {
    const dockerfile = read("Dockerfile");
    assert.deepEqual([...instruction(dockerfile, "ENTRYPOINT"), ...instruction(dockerfile, "CMD")], ["node", "bin/seqcast.js", "serve"]);
    assert.match(dockerfile, /^USER node$/m, "runs as a non-root user");
    assert.match(dockerfile, /npm ci --omit=dev/);
    assert.match(dockerfile, /^HEALTHCHECK /m);
  });

  it("every compose service's command is a valid `seqcast serve`", () => {
    const commands = [...read("docker-compose.yml").matchAll(/^\s+command: (\[.*\])$/gm)]
      .map((m) => JSON.parse(m[1]!) as string[])
      .filter((c) => c[0] === "serve");
    assert.ok(commands.length >= 2, "the redis nodes and the single node");
    for (const [, ...args] of commands) assert.ok(parseServeArgs(args, { SEQCAST_REDIS_URL: "redis://redis:6379" }), args.join(" "));
    assert.ok(commands.some((c) => c.includes("redis")), "nodes on the redis engine");
  });
});
