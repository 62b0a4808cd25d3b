import { beforeAll, describe, it } from "vitest";
import assert from "node:assert/strict";
import { generateKeyPair, SignJWT, type JWTPayload } from "jose";
import { createAuthenticator, type Authenticator } from "../../src/server/auth.js";
import { mintToken } from "../../src/tokens/mint.js";
import { b64url, hs256, now, rejects, SECRET } from "../support/auth.js";

/**
 * What a token must be for the HS256 authenticator, and what mintToken writes:
 * the header, the signature, the time claims, `sub` and the seqcast claim, each
 * refusal with the message a client sees. Key sources (PEM, JWKS, the secret
 * file) and `seqcast token` are in auth-keys.test.ts.
 */

const HOUR = 3600_000;

describe("HS256 authenticator", () => {
  let auth: Authenticator;
  beforeAll(async () => {
    auth = await createAuthenticator({ secret: SECRET });
  });

  it("round-trips a minted token to the identity", async () => {
    const jwt = await mintToken(SECRET, { user: "alice", admin: true, publish: ["general", "team.*"], subscribe: [">"], ttlMs: HOUR });
    assert.deepEqual(await auth.authenticate(`Bearer ${jwt}`), {
      user: "alice",
      admin: true,
      publish: ["general", "team.*"],
      subscribe: [">"],
    });
    // The scheme is case-insensitive.
    assert.equal((await auth.authenticate(`bearer ${jwt}`)).user, "alice");
  });

  it("maps a token without restrictions to any room, not admin", async () => {
    const jwt = await mintToken(SECRET, { user: "bob.smith_2-x", ttlMs: HOUR });
    assert.deepEqual(await auth.authenticate(`Bearer ${jwt}`), { user: "bob.smith_2-x", admin: false });
    // A token without any seqcast claim (third-party minted) too.
    assert.deepEqual(await auth.authenticate(`Bearer ${await hs256({ sub: "carol", exp: now() + 60 })}`), {
      user: "carol",
      admin: false,
    });
  });

  it("rooms sets both lists; publish/subscribe override it per side", async () => {
    const both = await mintToken(SECRET, { user: "a", rooms: ["general", "sports.>"], ttlMs: HOUR });
    const id = await auth.authenticate(`Bearer ${both}`);
    assert.deepEqual([id.publish, id.subscribe], [["general", "sports.>"], ["general", "sports.>"]]);
    const mixed = await mintToken(SECRET, { user: "a", rooms: ["general"], subscribe: [">"], ttlMs: HOUR });
    const id2 = await auth.authenticate(`Bearer ${mixed}`);
    assert.deepEqual([id2.publish, id2.subscribe], [["general"], [">"]]);
  });

  it("writes the claim format sub, iat, exp, seqcast", async () => {
    const jwt = await mintToken(SECRET, { user: "alice", admin: true, rooms: ["general"], ttlMs: 2 * HOUR });
    const [header, payload] = jwt.split(".").slice(0, 2).map((p) => JSON.parse(Buffer.from(p!, "base64url").toString()));
    assert.deepEqual(header, { alg: "HS256", typ: "JWT" });
    assert.deepEqual(Object.keys(payload).sort(), ["exp", "iat", "seqcast", "sub"]);
    assert.equal(payload.exp - payload.iat, 7200);
    assert.ok(Math.abs(payload.iat - now()) <= 2);
    assert.deepEqual(payload.seqcast, { admin: true, publish: ["general"], subscribe: ["general"] });
  });

  it("rejects a missing header", async () => {
    await rejects(auth, null, /missing 'authorization' header/);
    await rejects(auth, "", /missing 'authorization' header/);
  });

  it("rejects a header that is not a Bearer token", async () => {
    await rejects(auth, "Basic x", /not a Bearer token \(scheme 'Basic'\)/);
    await rejects(auth, "Bearer", /'Bearer' but carries no token/);
    await rejects(auth, "Bearer a b", /malformed token/);
  });

  it("rejects garbage as a malformed token", async () => {
    await rejects(auth, "Bearer garbage", /malformed token: a JWT is three base64url parts/);
    await rejects(auth, "Bearer a.b", /malformed token/);
    await rejects(auth, `Bearer ${b64url("not json")}.${b64url({ sub: "a" })}.sig`, /malformed token: its header is not base64url-encoded JSON/);
    await rejects(auth, `Bearer ${b64url({ typ: "JWT" })}.${b64url({ sub: "a" })}.sig`, /malformed token: its header has no 'alg'/);
  });

  it("rejects a forged signature (wrong secret) and an altered payload", async () => {
    const forged = await hs256({ sub: "alice", exp: now() + 60 }, new TextEncoder().encode("not-the-broker-secret"));
    await rejects(auth, `Bearer ${forged}`, /bad token signature/);
    const genuine = await mintToken(SECRET, { user: "mallory", rooms: ["public"], ttlMs: HOUR });
    const [h, , s] = genuine.split(".");
    const altered = `${h}.${b64url({ sub: "mallory", exp: now() + 60, seqcast: { admin: true } })}.${s}`;
    await rejects(auth, `Bearer ${altered}`, /bad token signature/);
  });

  it("rejects alg none (an unsigned token)", async () => {
    const payload = b64url({ sub: "alice", exp: now() + 60, seqcast: { admin: true } });
    await rejects(auth, `Bearer ${b64url({ alg: "none", typ: "JWT" })}.${payload}.`, /algorithm 'none' \(an unsigned token\) is not allowed/);
    await rejects(auth, `Bearer ${b64url({ alg: "NONE", typ: "JWT" })}.${payload}.`, /algorithm 'none'/);
  });

  it("rejects an expired token, saying when it expired", async () => {
    const exp = now() - 120;
    const jwt = await hs256({ sub: "alice", iat: exp - 60, exp });
    await rejects(auth, `Bearer ${jwt}`, new RegExp(`token expired at ${new Date(exp * 1000).toISOString().replace(/\./g, "\\.")} \\(12\\d s ago\\)`));
  });

  it("tolerates a few seconds of clock skew", async () => {
    assert.equal((await auth.authenticate(`Bearer ${await hs256({ sub: "alice", exp: now() - 2 })}`)).user, "alice");
    assert.equal((await auth.authenticate(`Bearer ${await hs256({ sub: "alice", nbf: now() + 2 })}`)).user, "alice");
  });

  it("rejects a token that is not valid yet (nbf in the future)", async () => {
    const nbf = now() + 600;
    await rejects(auth, `Bearer ${await hs256({ sub: "alice", nbf, exp: nbf + 60 })}`, new RegExp(`token not yet valid: usable from ${new Date(nbf * 1000).toISOString().replace(/\./g, "\\.")}`));
  });

  it("rejects a token with an invalid exp", async () => {
    await rejects(auth, `Bearer ${await hs256({ sub: "alice", exp: "tomorrow" as unknown as number })}`, /token claim 'exp' is invalid/);
  });

  it("rejects a missing or invalid sub", async () => {
    await rejects(auth, `Bearer ${await hs256({ exp: now() + 60 })}`, /token has no 'sub' claim/);
    await rejects(auth, `Bearer ${await hs256({ sub: "not a name!", exp: now() + 60 })}`, /token 'sub' "not a name!" is not a valid user name/);
    await rejects(auth, `Bearer ${await hs256({ sub: "x".repeat(65), exp: now() + 60 })}`, /'sub' .* is not a valid user name/);
    await rejects(auth, `Bearer ${await hs256({ sub: "", exp: now() + 60 })}`, /'sub' "" is not a valid user name/);
    await rejects(auth, `Bearer ${await hs256({ sub: "@alice", exp: now() + 60 })}`, /is not a valid user name/);
  });

  it("rejects a malformed seqcast claim", async () => {
    const cases: Array<[unknown, RegExp]> = [
      ["admin", /expected an object/],
      [null, /expected an object/],
      [["general"], /expected an object/],
      [{ admin: "yes" }, /'admin' must be true or false/],
      [{ publish: "general" }, /'publish' must be a list of room patterns/],
      [{ subscribe: [1] }, /'subscribe' has a non-string entry/],
      [{ subscribe: ["bad room"] }, /'subscribe' pattern "bad room"/],
      [{ publish: ["a.>.b"] }, /'>' may only be the last segment/],
      [{ publish: [""] }, /must not be empty/],
      [{ publsh: ["general"] }, /unknown field 'publsh'/],
    ];
    for (const [seqcast, message] of cases) {
      const jwt = await hs256({ sub: "alice", exp: now() + 60, seqcast } as JWTPayload);
      await rejects(auth, `Bearer ${jwt}`, new RegExp(`malformed seqcast claim: .*${message.source}`));
    }
  });

  it("rejects RS256/ES256 tokens (algorithm confusion)", async () => {
    for (const alg of ["RS256", "ES256"]) {
      const { privateKey } = await generateKeyPair(alg);
      const jwt = await new SignJWT({ sub: "alice", exp: now() + 60 }).setProtectedHeader({ alg }).sign(privateKey);
      await rejects(auth, `Bearer ${jwt}`, new RegExp(`token algorithm '${alg}' is not allowed; this broker accepts HS256`));
    }
  });

  it("resolves concurrent calls with one token in call order (publisher FIFO)", async () => {
    // Pipelined publishes are sequenced in the order their authentication completes.
    for (let round = 0; round < 5; round++) {
      const fresh = await createAuthenticator({ secret: SECRET });
      const jwt = await mintToken(SECRET, { user: "p1", ttlMs: HOUR });
      const other = await mintToken(SECRET, { user: "p2", ttlMs: HOUR });
      const order: number[] = [];
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          fresh.authenticate(`Bearer ${i % 2 ? jwt : other}`).then((id) => {
            if (id.user === "p1") order.push(i);
          }),
        ),
      );
      assert.deepEqual(order, [...order].sort((a, b) => a - b));
      assert.equal(order.length, 25);
    }
  });

  it("re-checks the expiry of a cached token and hands out copies", async () => {
    let clock = Date.now();
    const cached = await createAuthenticator({ secret: SECRET }, { now: () => clock });
    const exp = Math.floor(clock / 1000) + 60;
    const jwt = await hs256({ sub: "alice", exp, seqcast: { publish: ["a"] } });
    const first = await cached.authenticate(`Bearer ${jwt}`);
    first.publish!.push("everything");
    first.admin = true;
    assert.deepEqual(await cached.authenticate(`Bearer ${jwt}`), { user: "alice", admin: false, publish: ["a"] });
    clock = (exp + 4) * 1000; // within the tolerance
    assert.equal((await cached.authenticate(`Bearer ${jwt}`)).user, "alice");
    clock = (exp + 30) * 1000;
    await rejects(cached, `Bearer ${jwt}`, /token expired at .* \(30 s ago\)/);
    await rejects(cached, `Bearer ${jwt}`, /token expired at .* \(30 s ago\)/);
  });

  it("does not cache failures", async () => {
    let clock = Date.now();
    const cached = await createAuthenticator({ secret: SECRET }, { now: () => clock, cacheSize: 2 });
    const nbf = Math.floor(clock / 1000) + 600;
    const jwt = await hs256({ sub: "alice", nbf });
    await rejects(cached, `Bearer ${jwt}`, /not yet valid/);
    clock = (nbf + 1) * 1000;
    assert.equal((await cached.authenticate(`Bearer ${jwt}`)).user, "alice");
    // A small cache still answers for every token.
    for (const user of ["u1", "u2", "u3", "u1", "alice"])
      assert.equal((await cached.authenticate(`Bearer ${user === "alice" ? jwt : await hs256({ sub: user })}`)).user, user);
  });

  it("refuses an empty secret and more than one key kind", async () => {
    await assert.rejects(createAuthenticator({ secret: new Uint8Array(0) }), /secret is empty/);
    await assert.rejects(createAuthenticator({}), /needs a secret, a public key or a JWKS file/);
    await assert.rejects(createAuthenticator({ secret: SECRET, jwksPath: "/x" }), /exactly one/);
  });
});

describe("mintToken", () => {
  it("validates the user, the patterns and the ttl", async () => {
    await assert.rejects(mintToken(SECRET, { user: "no spaces", ttlMs: HOUR }), /user "no spaces" is not a user name/);
    await assert.rejects(mintToken(SECRET, { user: "", ttlMs: HOUR }), /is not a user name/);
    await assert.rejects(mintToken(SECRET, { user: "a", rooms: ["ok", "bad room"], ttlMs: HOUR }), /publish room pattern "bad room"/);
    await assert.rejects(mintToken(SECRET, { user: "a", subscribe: [">.x"], ttlMs: HOUR }), /subscribe room pattern ">\.x": '>' may only be the last segment/);
    await assert.rejects(mintToken(SECRET, { user: "a", ttlMs: 0 }), /ttl/);
  });
});
