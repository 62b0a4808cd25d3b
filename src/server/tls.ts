import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import tls from "node:tls";

/** The PEM files of `--tls-cert` and `--tls-key`. */
export interface TlsFiles {
  /** The certificate, then any intermediates (a "full chain" file). */
  cert: string;
  /** Its private key, unencrypted. */
  key: string;
}

/** What the broker logs about the certificate it serves. */
export interface CertificateSummary {
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  /** SHA-256 of the certificate (what `openssl x509 -fingerprint -sha256` prints). */
  fingerprint256: string;
}

/** Protocols offered by ALPN: HTTP/2 first (gRPC needs it), HTTP/1.1 for Connect and gRPC-Web clients without it. */
export const ALPN_PROTOCOLS = ["h2", "http/1.1"];

/**
 * The broker's TLS certificate and key, read from files and read again on
 * reload() (SIGHUP): new connections get the new ones, open connections keep
 * the session they negotiated. A reload that fails (a file half written, a
 * key that is not the certificate's) keeps the old certificate and throws,
 * so a renewal job's mistake never takes the broker's TLS down.
 */
export class TlsCertificate {
  private context: tls.SecureContext;
  private summaryNow: CertificateSummary;

  private constructor(
    readonly files: TlsFiles,
    loaded: { context: tls.SecureContext; summary: CertificateSummary },
  ) {
    this.context = loaded.context;
    this.summaryNow = loaded.summary;
  }

  /** Reads and checks both files; throws an Error that names the file at fault. */
  static load(files: TlsFiles): TlsCertificate {
    return new TlsCertificate(files, readCertificate(files));
  }

  /** The context new connections are served with. */
  get secureContext(): tls.SecureContext {
    return this.context;
  }

  get summary(): CertificateSummary {
    return this.summaryNow;
  }

  /** Reads the files again; on any error the certificate served stays the old one, and the error is thrown. */
  reload(): CertificateSummary {
    const loaded = readCertificate(this.files);
    this.context = loaded.context;
    this.summaryNow = loaded.summary;
    return loaded.summary;
  }
}

function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (error as Error).message;
    throw new Error(`${what} ${file}: cannot read it (${why})`);
  }
}

function readCertificate(files: TlsFiles): { context: tls.SecureContext; summary: CertificateSummary } {
  const certPem = readPem(files.cert, "--tls-cert");
  const keyPem = readPem(files.key, "--tls-key");
  let certificate: X509Certificate;
  try {
    if (!certPem.includes("-----BEGIN CERTIFICATE-----")) throw new Error("no BEGIN CERTIFICATE block");
    certificate = new X509Certificate(certPem);
  } catch {
    throw new Error(`--tls-cert ${files.cert}: no PEM certificate in it`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw new Error(`--tls-key ${files.key}: no unencrypted PEM private key in it (${(error as Error).message})`);
  }
  if (!certificate.checkPrivateKey(key)) throw new Error(`--tls-key ${files.key} is not the private key of --tls-cert ${files.cert}`);
  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext({ cert: certPem, key: keyPem });
  } catch (error) {
    throw new Error(`--tls-cert ${files.cert}, --tls-key ${files.key}: ${(error as Error).message}`);
  }
  return {
    context,
    summary: {
      subject: certificate.subject.replaceAll("\n", ", "),
      issuer: certificate.issuer.replaceAll("\n", ", "),
      validFrom: new Date(certificate.validFrom).toISOString(),
      validTo: new Date(certificate.validTo).toISOString(),
      fingerprint256: certificate.fingerprint256,
    },
  };
}
