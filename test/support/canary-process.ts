/**
 * The hostile suite's canary (canary.ts) as a process of its own:
 *   node --import tsx test/support/canary-process.ts <broker url>
 * prints {"baseline": …} once it measured its calm second, then answers each
 * line on stdin: "reset" with {"reset": true}, "stop" with its report (JSON),
 * after which it exits. It exits too when stdin closes (the test died).
 */
import { createInterface } from "node:readline";
import { runCanary } from "./canary.js";

const url = process.argv[2];
if (!url) {
  console.error("usage: canary-process.ts <broker url>");
  process.exit(2);
}
try {
  const canary = await runCanary(url);
  console.log(JSON.stringify({ baseline: canary.baseline }));
  const lines = createInterface({ input: process.stdin });
  lines.on("line", async (line) => {
    if (line === "reset") {
      await canary.reset();
      console.log(JSON.stringify({ reset: true }));
    } else if (line === "stop") {
      console.log(JSON.stringify(await canary.stop()));
      process.exit(0);
    }
  });
  lines.on("close", () => process.exit(0));
} catch (error) {
  console.log(JSON.stringify({ error: String(error) }));
  process.exit(1);
}
