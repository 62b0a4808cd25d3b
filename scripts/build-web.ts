// Builds the chat page that `seqcast serve` serves at / from src/web into
// dist/web (not committed): esbuild bundles src/web/main.ts with the SDK's
// browser entry (src/client/web.ts) and the stylesheet; index.html is
// copied. Run: npm run build:web (npm ci runs it through `prepare`).
//
// platform "browser" makes any node: import below the page a build error,
// which is what keeps the SDK core runtime-agnostic.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url));
const out = root("dist/web");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: { main: root("src/web/main.ts"), style: root("src/web/style.css") },
  outdir: `${out}/assets`,
  bundle: true,
  platform: "browser",
  format: "esm",
  target: ["es2022", "chrome111", "firefox111", "safari16.4"],
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
  metafile: true,
});
copyFileSync(root("src/web/index.html"), `${out}/index.html`);
const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
console.log(`build:web: dist/web (${Math.round(bytes / 1024)} KiB with source maps)`);
