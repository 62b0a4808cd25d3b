import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** The fan-out's "seqcast-tls" row: a self-signed certificate for 127.0.0.1, made once per run by openssl. */
export interface BenchCertificate {
  cert: string;
  key: string;
  /** What the bench's clients trust. */
  pem: string;
}

let made: BenchCertificate | undefined;

/** The run's certificate (P-256, as `openssl req` makes it in the README's TLS section); throws without openssl. */
export function benchCertificate(): BenchCertificate {
  if (made) return made;
  const dir = mkdtempSync(path.join(os.tmpdir(), "seqcast-bench-tls-"));
  const cert = path.join(dir, "tls.crt");
  const key = path.join(dir, "tls.key");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
    { stdio: "ignore" },
  );
  made = { cert, key, pem: readFileSync(cert, "utf8") };
  return made;
}

/** The broker child's environment for TLS (read by resolveSettings, as `seqcast serve` reads it). */
export function tlsEnv(): Record<string, string> {
  const { cert, key } = benchCertificate();
  return { SEQCAST_TLS_CERT: cert, SEQCAST_TLS_KEY: key };
}
