import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, test, testToken } from "../support/fixtures.js";

/**
 * The Python client of examples/python (issue 8 §4) against a real broker:
 * its own suite (reorder buffer unit tests, the contract as a Python user
 * sees it, chat.py driven like a user) runs in Debian's python3 with
 * python3-grpcio and python3-protobuf, which CI installs (.ci/run).
 */

const PYTHON = "/usr/bin/python3";
const PYTHON_DIR = fileURLToPath(new URL("../../examples/python/", import.meta.url));
const SUITES = ["test_reorder_buffer", "test_errors", "test_contract", "test_chat"];

/** Why the Python suite cannot run on this machine, or undefined when it can. */
function whyNoPython(): string | undefined {
  const probe = spawnSync(PYTHON, ["-c", "import grpc, google.protobuf"], { encoding: "utf8" });
  if (probe.error) return `${PYTHON} is missing (${probe.error.message})`;
  if (probe.status !== 0) {
    const last = probe.stderr.trim().split("\n").pop();
    return `${last} (apt-get install python3-grpcio python3-protobuf; .ci/run does)`;
  }
  return undefined;
}

const noPython = whyNoPython();
if (noPython) console.warn(`test/e2e/python-client.test.ts is skipped: ${noPython}`);

/** Runs a command to its end without blocking the event loop: the broker under test lives in this process. */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

describe("Python client (examples/python)", () => {
  test.skipIf(noPython !== undefined)("passes its unit, contract and chat tests against a real broker", { timeout: 180_000 }, async ({ broker }) => {
    const tokens = {
      alice: testToken("py-alice"),
      bob: testToken("py-bob"),
      carol: testToken("py-carol"),
      admin: testToken("py-admin", { admin: true }),
    };
    const { code, output } = await run(PYTHON, ["-m", "unittest", "-v", ...SUITES], PYTHON_DIR, {
      ...process.env,
      SEQCAST_URL: `127.0.0.1:${broker.port}`,
      SEQCAST_TEST_TOKENS: JSON.stringify(tokens),
      PYTHONDONTWRITEBYTECODE: "1", // no __pycache__ in the work tree
    });
    console.log(`python3 -m unittest ${SUITES.join(" ")}:\n${output}`);
    expect(code, output).toBe(0);
    // Every test must have run here: a skip would hide a missing token or broker setting.
    expect(output).not.toMatch(/\.\.\. skipped |skipped=\d/);
  });
});
