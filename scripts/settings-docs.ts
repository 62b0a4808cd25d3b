// Writes the configuration table of `seqcast serve` into README.md, between
// the settings markers, from the one settings table (src/cli/settings.ts).
// Run: npm run docs:settings. test/unit/settings.test.ts fails when the
// README is stale.
import { readFileSync, writeFileSync } from "node:fs";
import { replaceSettingsBlock } from "../src/cli/settings-docs.js";

const path = new URL("../README.md", import.meta.url);
const before = readFileSync(path, "utf8");
const after = replaceSettingsBlock(before);
if (after !== before) writeFileSync(path, after);
console.log(after === before ? "README.md: settings table up to date" : "README.md: settings table rewritten");
