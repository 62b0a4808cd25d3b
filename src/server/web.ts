import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import type http from "node:http";
import type http2 from "node:http2";
import { extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { userNameError } from "../names/rooms.js";

/**
 * The chat page on the broker's own port: GET `/` and `/assets/*` serve the
 * page built from src/web (npm run build:web, into dist/web), GET
 * `/config.json` tells the page whether it may sign users in by name, and
 * POST `/dev/token` does that, only when `serve --dev-login` gave a minter.
 * Every other request is left to the Connect handler.
 */

/** Where `npm run build:web` puts the page. */
export const WEB_DIR = fileURLToPath(new URL("../../dist/web/", import.meta.url));

/** How long a dev-login token lives: long enough to chat, short enough to matter little if it leaks. */
export const DEV_TOKEN_TTL_MS = 60 * 60 * 1000;

export interface WebOptions {
  /** The built page (default WEB_DIR). */
  dir?: string;
  /**
   * Mints a token for a user name with the broker's HS256 secret. Only for
   * `serve --dev-login`: without it POST /dev/token does not exist (404).
   */
  devLogin?: (user: string) => Promise<string>;
}

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

export interface WebPage {
  /** The page was found built at startup. */
  readonly built: boolean;
  readonly dir: string;
  /** Answers the request if it is the page's; false leaves it to the RPC handler. */
  handle(request: Request, response: Response): boolean;
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/** The page talks only to its own origin; nothing inline, nothing framed. */
const CSP = "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const MAX_LOGIN_BODY = 1024;

export function createWebPage(options: WebOptions = {}): WebPage {
  const dir = options.dir ?? WEB_DIR;
  // Read once at startup: requests can only ever name these files (no path from a URL reaches the file system).
  const assets = loadAssets(dir);
  const built = assets.has("/");
  const config = Buffer.from(JSON.stringify({ devLogin: options.devLogin !== undefined }));

  return {
    built,
    dir,
    handle(request, response) {
      const path = (request.url ?? "/").split("?")[0]!;
      const method = request.method ?? "GET";
      if (path === "/dev/token" && options.devLogin) {
        void devToken(request, response, options.devLogin);
        return true;
      }
      if (method !== "GET" && method !== "HEAD") return false;
      if (path === "/config.json") {
        send(response, 200, { "content-type": "application/json", "cache-control": "no-store" }, config, method);
        return true;
      }
      const asset = assets.get(path === "/index.html" ? "/" : path);
      if (asset) {
        serveAsset(request, response, asset, method);
        return true;
      }
      if (path === "/" || path.startsWith("/assets/")) {
        const text = built
          ? "Not found.\n"
          : "The chat page is not built. Run 'npm run build:web' (npm ci does it), then restart the broker.\n";
        send(response, built ? 404 : 503, { "content-type": "text/plain; charset=utf-8" }, Buffer.from(text), method);
        return true;
      }
      return false;
    },
  };
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(join(dir, "index.html"))) return assets;
  const walk = (folder: string) => {
    for (const name of readdirSync(folder)) {
      const file = join(folder, name);
      if (statSync(file).isDirectory()) walk(file);
      else {
        const body = readFileSync(file);
        const url = `/${relative(dir, file).split(sep).join("/")}`;
        const asset = {
          body,
          type: TYPES[extname(name)] ?? "application/octet-stream",
          etag: `"${createHash("sha1").update(body).digest("base64url")}"`,
        };
        assets.set(url === "/index.html" ? "/" : url, asset);
      }
    }
  };
  walk(dir);
  return assets;
}

function serveAsset(request: Request, response: Response, asset: Asset, method: string): void {
  const headers: Record<string, string> = {
    "content-type": asset.type,
    // Asset names carry no hash: revalidate every time (the ETag makes that a 304).
    "cache-control": "no-cache",
    etag: asset.etag,
  };
  if (asset.type.startsWith("text/html")) headers["content-security-policy"] = CSP;
  if (request.headers["if-none-match"] === asset.etag) return send(response, 304, headers, Buffer.alloc(0), "HEAD");
  send(response, 200, headers, asset.body, method);
}

function send(response: Response, status: number, headers: Record<string, string>, body: Buffer, method: string): void {
  (response as http.ServerResponse).writeHead(status, {
    ...headers,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-length": String(body.length),
  });
  (response as http.ServerResponse).end(method === "HEAD" ? undefined : body);
}

const json = (response: Response, status: number, value: unknown) =>
  send(response, status, { "content-type": "application/json", "cache-control": "no-store" }, Buffer.from(JSON.stringify(value)), "POST");

/**
 * POST /dev/token `{"user": "alice"}` → `{"token", "user", "expiresInSeconds"}`.
 * JSON only: a cross-site form cannot send it without a CORS preflight,
 * which this endpoint never answers, and no other site can read the answer.
 */
async function devToken(request: Request, response: Response, mint: (user: string) => Promise<string>): Promise<void> {
  if (request.method !== "POST") return json(response, 405, { error: "use POST with {\"user\": \"NAME\"}" });
  if (!String(request.headers["content-type"] ?? "").startsWith("application/json"))
    return json(response, 415, { error: "send JSON: content-type application/json" });
  let body = "";
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      body += chunk.toString("utf8");
      if (body.length > MAX_LOGIN_BODY) return json(response, 413, { error: "request too large" });
    }
    const user = (JSON.parse(body) as { user?: unknown }).user;
    if (typeof user !== "string") return json(response, 400, { error: "user: required" });
    const problem = userNameError(user);
    if (problem) return json(response, 400, { error: `user ${problem}` });
    const token = await mint(user);
    json(response, 200, { token, user, expiresInSeconds: DEV_TOKEN_TTL_MS / 1000 });
  } catch (error) {
    if (!response.headersSent) json(response, 400, { error: error instanceof SyntaxError ? "not JSON" : String((error as Error).message) });
  }
}
