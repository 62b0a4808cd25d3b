import assert from "node:assert/strict";
import { SignJWT, type JWTPayload } from "jose";
import { BrokerError } from "../../src/broker/errors.js";
import type { Authenticator } from "../../src/server/auth.js";

/**
 * What the authenticator's unit tests share (test/unit/auth*.test.ts): they forge
 * tokens by hand and check the message of each rejection, since that message is
 * all a client is told. Test brokers sign with TEST_SECRET (tokens.ts) instead.
 */

/** The HS256 secret of the unit tests' authenticators. */
export const SECRET = new TextEncoder().encode("unit-test-secret-0123456789abcdef");

/** Seconds since the epoch, the unit of a JWT's iat, nbf and exp. */
export const now = () => Math.floor(Date.now() / 1000);

/** One part of a hand-built JWT: a string as is, anything else as JSON. */
export const b64url = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/** A token signed with jose directly, so claims can be anything. */
export function hs256(payload: JWTPayload, secret = SECRET): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(secret);
}

/** Asserts an unauthenticated BrokerError whose message matches. */
export async function rejects(auth: Authenticator, header: string | null, message: RegExp): Promise<void> {
  await assert.rejects(auth.authenticate(header), (error: unknown) => {
    assert.ok(error instanceof BrokerError, `expected a BrokerError, got ${String(error)}`);
    assert.equal(error.code, "unauthenticated");
    assert.match(error.message, message);
    return true;
  });
}
