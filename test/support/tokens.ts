import { createHmac } from "node:crypto";
import { createAuthenticator } from "../../src/server/auth.js";
import type { Authenticate } from "../../src/server/server.js";

/** The HS256 secret of every test broker (spawned ones get it as SEQCAST_JWT_SECRET). */
export const TEST_SECRET = "seqcast-test-secret-not-for-production";

export interface TestClaims {
  admin?: boolean;
  publish?: string[];
  subscribe?: string[];
  /** Seconds from now; negative = already expired. */
  expiresIn?: number;
  secret?: string;
  alg?: string;
}

const b64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");

/**
 * A signed HS256 JWT, built by hand with node:crypto rather than the
 * broker's own library, so tests also check interoperability.
 */
export function testToken(user: string, claims: TestClaims = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: claims.alg ?? "HS256", typ: "JWT" }));
  const seqcast: Record<string, unknown> = {};
  if (claims.admin) seqcast.admin = true;
  if (claims.publish) seqcast.publish = claims.publish;
  if (claims.subscribe) seqcast.subscribe = claims.subscribe;
  const payload = b64url(JSON.stringify({ sub: user, iat: now, exp: now + (claims.expiresIn ?? 3600), seqcast }));
  const signature = createHmac("sha256", claims.secret ?? TEST_SECRET).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

/** The broker's authentication with TEST_SECRET. */
export async function testAuthenticate(): Promise<Authenticate> {
  const auth = await createAuthenticator({ secret: new TextEncoder().encode(TEST_SECRET) });
  return (header) => auth.authenticate(header);
}
