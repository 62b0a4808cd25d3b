import { createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  errors,
  importSPKI,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type ProtectedHeaderParameters,
} from "jose";
import { BrokerError } from "../broker/errors.js";
import type { Identity } from "../broker/identity.js";
import { patternError } from "../names/patterns.js";
import { loadOrCreateSecret } from "../tokens/secret.js";

/**
 * Token authentication: every PubSubService call carries
 * `authorization: Bearer <JWT>`. The token's `sub` is the caller's identity;
 * the private claim `seqcast` = { admin?, publish?, subscribe? } carries the
 * role and the room patterns the user may publish to and read.
 *
 * Only the algorithms of the configured key are accepted (HS256 for a
 * secret; RS256/ES256 for a public key or JWKS), so unsigned (`alg: none`)
 * tokens and algorithm-confusion tokens (an HS256 token "signed" with the
 * public key) are rejected before any signature check.
 */
export type { Identity };

export interface AuthConfig {
  /** HS256 secret. */
  secret?: Uint8Array;
  /** PEM (SPKI) public key for RS256 or ES256. */
  publicKeyPem?: string;
  /** Path of a JWKS JSON file with RS256/ES256 public keys (`kid` selects). */
  jwksPath?: string;
}

export interface Authenticator {
  /**
   * Verifies `authorization: Bearer <jwt>` and returns who is calling;
   * throws BrokerError("unauthenticated") whose message says what is wrong.
   */
  authenticate(authorization: string | null): Promise<Identity>;
}

/** Seconds of clock skew tolerated on exp and nbf. */
export const CLOCK_TOLERANCE_S = 5;
const ASYMMETRIC_ALGS = ["RS256", "ES256"];
const USER_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const CLAIM_KEYS = ["admin", "publish", "subscribe"];

type VerifyKey = Uint8Array | CryptoKey | JWTVerifyGetKey;

export interface AuthenticatorOptions {
  /** Verified tokens remembered (default 10,000). */
  cacheSize?: number;
  /** Clock in ms since the epoch (tests). */
  now?: () => number;
}

/**
 * Builds the verifier for one of the three key kinds (exactly one must be
 * set). Throws a plain Error naming the problem when the key is unusable.
 *
 * Verified tokens are cached by their header's exact text (expiry is still checked on
 * every call), and concurrent calls with the same token share one
 * verification. Besides sparing a signature check per call, this keeps one
 * client's pipelined calls in arrival order: jose verifies with WebCrypto,
 * whose results come back in no particular order, and the broker sequences
 * publishes in the order their authentication completes.
 */
export async function createAuthenticator(config: AuthConfig, options: AuthenticatorOptions = {}): Promise<Authenticator> {
  const kinds = [config.secret !== undefined, config.publicKeyPem !== undefined, config.jwksPath !== undefined];
  const count = kinds.filter(Boolean).length;
  if (count === 0) throw new Error("authentication needs a secret, a public key or a JWKS file");
  if (count > 1) throw new Error("authentication takes exactly one of a secret, a public key or a JWKS file");

  let key: VerifyKey;
  let algorithms: string[];
  if (config.jwksPath !== undefined) {
    key = loadJwks(config.jwksPath);
    algorithms = ASYMMETRIC_ALGS;
  } else if (config.publicKeyPem !== undefined) {
    const alg = publicKeyAlgorithm(config.publicKeyPem);
    try {
      key = await importSPKI(config.publicKeyPem, alg);
    } catch (error) {
      throw new Error(`public key: not a usable ${alg} SPKI PEM key (${(error as Error).message})`, { cause: error });
    }
    algorithms = [alg];
  } else {
    if (config.secret!.length === 0) throw new Error("the HS256 secret is empty");
    key = config.secret!;
    algorithms = ["HS256"];
  }
  const accepted = algorithms.join(", ");
  const now = options.now ?? Date.now;
  const cacheSize = options.cacheSize ?? 10_000;
  const cache = new Map<string, CacheEntry>();

  async function verify(token: string): Promise<Verified> {
    const header = protectedHeader(token);
    const alg = header.alg;
    if (alg === undefined || alg === "") throw unauthenticated("malformed token: its header has no 'alg' (algorithm)");
    if (alg.toLowerCase() === "none")
      throw unauthenticated(`token algorithm 'none' (an unsigned token) is not allowed; this broker accepts ${accepted}`);
    if (!algorithms.includes(alg))
      throw unauthenticated(`token algorithm '${printable(alg)}' is not allowed; this broker accepts ${accepted}`);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key as Uint8Array, {
        algorithms,
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(now()),
      }));
    } catch (error) {
      throw unauthenticated(describeJoseError(error, header, accepted, now()), error, error instanceof errors.JWTExpired ? "TOKEN_EXPIRED" : "TOKEN_INVALID");
    }
    return { identity: identityFrom(payload), exp: payload.exp };
  }

  return {
    async authenticate(authorization) {
      // Keyed by the header's exact text: a client sends the same one call after call, parsed once.
      const key = authorization ?? "";
      const entry = cache.get(key);
      if (entry?.verified) {
        const { exp } = entry.verified;
        if (exp !== undefined && exp <= now() / 1000 - CLOCK_TOLERANCE_S) {
          cache.delete(key);
          throw unauthenticated(expiredMessage(exp, now()), undefined, "TOKEN_EXPIRED");
        }
        return copy(entry.verified.identity);
      }
      if (entry) return copy((await entry.pending).identity);
      const fresh: CacheEntry = { pending: verify(bearerToken(authorization)) };
      cache.set(key, fresh);
      if (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
      // Registered before the caller's await: the entry is complete when callers resume.
      fresh.pending.then(
        (verified) => {
          fresh.verified = verified;
        },
        () => {
          if (cache.get(key) === fresh) cache.delete(key);
        },
      );
      return copy((await fresh.pending).identity);
    },
  };
}

interface Verified {
  identity: Identity;
  exp: number | undefined;
}

interface CacheEntry {
  pending: Promise<Verified>;
  verified?: Verified;
}

/** Callers get their own copy: the cached identity stays as verified. */
const copy = (identity: Identity): Identity => {
  const result: Identity = { user: identity.user, admin: identity.admin };
  if (identity.publish) result.publish = [...identity.publish];
  if (identity.subscribe) result.subscribe = [...identity.subscribe];
  return result;
};

function expiredMessage(exp: number, nowMs: number): string {
  const ago = Math.max(0, Math.round(nowMs / 1000 - exp));
  return `token expired at ${isoTime(exp)} (${ago} s ago); mint a new one`;
}

/** The token of `Bearer <token>`. */
function bearerToken(authorization: string | null): string {
  if (authorization === null || authorization.trim() === "")
    throw unauthenticated(
      "missing 'authorization' header: send 'authorization: Bearer <token>' (mint one with 'seqcast token --user NAME')",
      undefined,
      "TOKEN_MISSING",
    );
  const [scheme = "", ...rest] = authorization.trim().split(/\s+/);
  if (scheme.toLowerCase() !== "bearer")
    throw unauthenticated(`'authorization' header is not a Bearer token (scheme '${printable(scheme)}'); send 'Bearer <token>'`);
  if (rest.length === 0) throw unauthenticated("'authorization' header says 'Bearer' but carries no token");
  if (rest.length > 1) throw unauthenticated("malformed token: the Bearer token contains spaces");
  return rest[0]!;
}

/** The decoded JOSE header, or "malformed token". */
function protectedHeader(token: string): ProtectedHeaderParameters {
  const parts = token.split(".");
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[0]!) || !/^[A-Za-z0-9_-]+$/.test(parts[1]!))
    throw unauthenticated("malformed token: a JWT is three base64url parts separated by '.'");
  try {
    const header = decodeProtectedHeader(token);
    if (header.alg !== undefined && typeof header.alg !== "string")
      throw unauthenticated("malformed token: its header's 'alg' is not a string");
    return header;
  } catch (error) {
    if (error instanceof BrokerError) throw error;
    throw unauthenticated("malformed token: its header is not base64url-encoded JSON", error);
  }
}

function describeJoseError(error: unknown, header: ProtectedHeaderParameters, accepted: string, nowMs: number): string {
  if (error instanceof errors.JWTExpired) {
    const exp = error.payload.exp;
    return typeof exp === "number" ? expiredMessage(exp, nowMs) : "token expired";
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "nbf" && error.reason === "check_failed") {
      const nbf = error.payload.nbf;
      return `token not yet valid: usable from ${typeof nbf === "number" ? isoTime(nbf) : "later"} ('nbf')`;
    }
    return `token claim '${error.claim}' is invalid: ${error.message}`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return `token algorithm '${printable(String(header.alg))}' is not allowed; this broker accepts ${accepted}`;
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return "bad token signature: forged, altered, or signed with another key than the broker's";
  if (error instanceof errors.JWKSNoMatchingKey) {
    const kid = header.kid === undefined ? "no 'kid'" : `kid '${printable(String(header.kid))}'`;
    return `bad token signature: no key in the broker's JWKS matches the token (${kid}, alg ${printable(String(header.alg))})`;
  }
  if (error instanceof errors.JWKSMultipleMatchingKeys)
    return "token is ambiguous: several keys in the broker's JWKS match it; give the token a 'kid'";
  if (error instanceof errors.JWTInvalid) return "malformed token: its payload is not a JSON object of claims";
  if (error instanceof errors.JWSInvalid || error instanceof errors.JOSENotSupported)
    return `malformed token: ${error.message}`;
  if (error instanceof errors.JOSEError) return `token rejected: ${error.message}`;
  return `token rejected: ${(error as Error)?.message ?? String(error)}`;
}

function identityFrom(payload: JWTPayload): Identity {
  const sub = payload.sub;
  if (sub === undefined) throw unauthenticated("token has no 'sub' claim (the user name)");
  if (typeof sub !== "string" || !USER_RE.test(sub))
    throw unauthenticated(
      `token 'sub' ${JSON.stringify(typeof sub === "string" ? printable(sub) : sub)} is not a valid user name; use 1-64 letters, digits, '_', '.' or '-'`,
    );
  const identity: Identity = { user: sub, admin: false };
  const claim = payload.seqcast;
  if (claim === undefined) return identity;
  if (typeof claim !== "object" || claim === null || Array.isArray(claim))
    throw unauthenticated("malformed seqcast claim: expected an object { admin?, publish?, subscribe? }");
  const fields = claim as Record<string, unknown>;
  for (const name of Object.keys(fields))
    if (!CLAIM_KEYS.includes(name))
      throw unauthenticated(`malformed seqcast claim: unknown field '${printable(name)}' (expected admin, publish, subscribe)`);
  if (fields.admin !== undefined) {
    if (typeof fields.admin !== "boolean") throw unauthenticated("malformed seqcast claim: 'admin' must be true or false");
    identity.admin = fields.admin;
  }
  const publish = claimPatterns(fields.publish, "publish");
  if (publish) identity.publish = publish;
  const subscribe = claimPatterns(fields.subscribe, "subscribe");
  if (subscribe) identity.subscribe = subscribe;
  return identity;
}

function claimPatterns(value: unknown, name: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw unauthenticated(`malformed seqcast claim: '${name}' must be a list of room patterns`);
  for (const p of value) {
    if (typeof p !== "string") throw unauthenticated(`malformed seqcast claim: '${name}' has a non-string entry`);
    const problem = patternError(p);
    if (problem) throw unauthenticated(`malformed seqcast claim: '${name}' pattern "${printable(p)}": ${problem}`);
  }
  return [...(value as string[])];
}

/** RS256 for an RSA key, ES256 for a P-256 EC key; anything else is refused. */
function publicKeyAlgorithm(pem: string): "RS256" | "ES256" {
  if (!pem.includes("-----BEGIN PUBLIC KEY-----"))
    throw new Error("public key: expected a PEM SPKI public key ('-----BEGIN PUBLIC KEY-----')");
  let key;
  try {
    key = createPublicKey({ key: pem, format: "pem" });
  } catch (error) {
    throw new Error(`public key: not a readable PEM public key (${(error as Error).message})`, { cause: error });
  }
  if (key.asymmetricKeyType === "rsa") return "RS256";
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "prime256v1") return "ES256";
    throw new Error(`public key: EC curve ${curve ?? "?"} is not supported; ES256 needs P-256 (prime256v1)`);
  }
  throw new Error(`public key: ${key.asymmetricKeyType ?? "unknown"} keys are not supported; use RSA (RS256) or EC P-256 (ES256)`);
}

function loadJwks(path: string): JWTVerifyGetKey {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`JWKS ${path}: ${(error as Error).message}`, { cause: error });
  }
  const keys = (json as { keys?: unknown })?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new Error(`JWKS ${path}: expected {"keys": [...]} with at least one key`);
  for (const k of keys as Array<Record<string, unknown>>) {
    if (k?.kty === "oct") throw new Error(`JWKS ${path}: symmetric ('oct') keys are not accepted; use SEQCAST_JWT_SECRET for HS256`);
    if ("d" in (k ?? {})) throw new Error(`JWKS ${path}: contains a private key; the broker needs only public keys`);
  }
  try {
    return createLocalJWKSet(json as { keys: [] });
  } catch (error) {
    throw new Error(`JWKS ${path}: ${(error as Error).message}`, { cause: error });
  }
}

const unauthenticated = (message: string, cause?: unknown, reason: "TOKEN_MISSING" | "TOKEN_EXPIRED" | "TOKEN_INVALID" = "TOKEN_INVALID") =>
  new BrokerError("unauthenticated", message, { reason, cause });

const isoTime = (seconds: number) => new Date(seconds * 1000).toISOString();

/** At most 64 printable ASCII characters of an untrusted value, for messages. */
function printable(value: string): string {
  const clean = value.replace(/[^\x20-\x7e]/g, "?");
  return clean.length > 64 ? `${clean.slice(0, 64)}…` : clean;
}

/**
 * The broker's key from the environment: SEQCAST_JWT_SECRET (HS256, the
 * UTF-8 bytes of the string), SEQCAST_JWT_PUBLIC_KEY (path of a PEM public
 * key, RS256/ES256) or SEQCAST_JWT_JWKS (path of a JWKS file); at most one.
 * When none is set: the data directory's secret (created if absent).
 */
export function authConfigFromEnv(env: NodeJS.ProcessEnv, dataDir: string): AuthConfig {
  const set = ["SEQCAST_JWT_SECRET", "SEQCAST_JWT_PUBLIC_KEY", "SEQCAST_JWT_JWKS"].filter((name) => env[name]);
  if (set.length > 1) throw new Error(`set only one of ${set.join(", ")}`);
  if (env.SEQCAST_JWT_SECRET) return { secret: new TextEncoder().encode(env.SEQCAST_JWT_SECRET) };
  if (env.SEQCAST_JWT_PUBLIC_KEY) {
    try {
      return { publicKeyPem: readFileSync(env.SEQCAST_JWT_PUBLIC_KEY, "utf8") };
    } catch (error) {
      throw new Error(`SEQCAST_JWT_PUBLIC_KEY: cannot read ${env.SEQCAST_JWT_PUBLIC_KEY} (${(error as Error).message})`, { cause: error });
    }
  }
  if (env.SEQCAST_JWT_JWKS) return { jwksPath: env.SEQCAST_JWT_JWKS };
  return { secret: loadOrCreateSecret(dataDir).secret };
}
