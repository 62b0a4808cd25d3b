import { SignJWT } from "jose";
import { patternError } from "../names/patterns.js";
import { printable, userNameError } from "../names/rooms.js";

export interface TokenRequest {
  user: string;
  admin?: boolean;
  /** Room patterns for both publish and subscribe (publish/subscribe override it for their side). */
  rooms?: string[];
  publish?: string[];
  subscribe?: string[];
  ttlMs: number;
}

/**
 * Mints an HS256 token for the broker whose secret this is. Claims: sub,
 * iat, exp and `seqcast` = { admin?: true, publish?: [...], subscribe?: [...] }.
 * Throws an Error saying what is wrong with the request.
 */
export async function mintToken(secret: Uint8Array, request: TokenRequest): Promise<string> {
  if (secret.length === 0) throw new Error("the HS256 secret is empty");
  const badUser = userNameError(request.user);
  if (badUser) throw new Error(`user ${badUser}`);
  if (!Number.isFinite(request.ttlMs) || request.ttlMs < 1000) throw new Error(`ttl: must be at least 1s`);
  const publish = request.publish ?? request.rooms;
  const subscribe = request.subscribe ?? request.rooms;
  for (const [name, list] of [["publish", publish], ["subscribe", subscribe]] as const) {
    if (list === undefined) continue;
    for (const p of list) {
      const problem = patternError(p);
      if (problem) throw new Error(`${name} room pattern "${printable(p)}": ${problem}`);
    }
  }
  const claim: { admin?: true; publish?: string[]; subscribe?: string[] } = {};
  if (request.admin) claim.admin = true;
  if (publish) claim.publish = [...publish];
  if (subscribe) claim.subscribe = [...subscribe];
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ seqcast: claim })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(request.user)
    .setIssuedAt(now)
    .setExpirationTime(now + Math.ceil(request.ttlMs / 1000))
    .sign(secret);
}
