import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// The broker's own token secret: where it lives and how it is created. Used
// by the server (to verify), `seqcast token` and the chat (to mint).

export const SECRET_FILE = "jwt-secret";

/**
 * The broker's own HS256 secret in `<dataDir>/jwt-secret` (32 random bytes,
 * stored raw): created with mode 0600 (the directory too if needed) on first
 * use so the embedded default is secure without set-up, and reused
 * afterwards. Creation is atomic (temporary file + link), so a broker and a
 * `seqcast token` starting together agree on one secret. `warning` is set
 * when the existing file is readable by group or others, or shorter than 32 bytes.
 */
export function loadOrCreateSecret(dataDir: string): { secret: Uint8Array; created: boolean; path: string; warning?: string } {
  const path = join(dataDir, SECRET_FILE);
  const existing = readSecret(path);
  if (existing) return existing;
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32);
  const temp = join(dataDir, `.${SECRET_FILE}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  writeFileSync(temp, secret, { mode: 0o600, flag: "wx" });
  try {
    linkSync(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    // Another process created it first: use theirs.
    const theirs = readSecret(path);
    if (!theirs) throw error;
    return theirs;
  } finally {
    unlinkSync(temp);
  }
  return { secret: new Uint8Array(secret), created: true, path };
}

function readSecret(path: string): { secret: Uint8Array; created: false; path: string; warning?: string } | undefined {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`${path}: cannot read the JWT secret (${(error as Error).message})`, { cause: error });
  }
  if (data.length === 0) throw new Error(`${path}: the JWT secret file is empty; delete it to have a new one created`);
  const warnings: string[] = [];
  const mode = statSync(path).mode & 0o777;
  if (process.platform !== "win32" && (mode & 0o077) !== 0)
    warnings.push(`${path} is readable by others (mode ${mode.toString(8).padStart(4, "0")}): run 'chmod 600 ${path}'`);
  if (data.length < 32) warnings.push(`${path} holds only ${data.length} bytes; 32 random bytes are recommended`);
  const result: { secret: Uint8Array; created: false; path: string; warning?: string } = {
    secret: new Uint8Array(data),
    created: false,
    path,
  };
  if (warnings.length > 0) result.warning = warnings.join("; ");
  return result;
}
