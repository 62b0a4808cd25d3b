import { afterAll, beforeAll, describe, it } from "vitest";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from "jose";
import { BrokerError } from "../../src/broker/errors.js";
import { authConfigFromEnv, createAuthenticator, type Authenticator } from "../../src/server/auth.js";
import { mintToken } from "../../src/tokens/mint.js";
import { loadOrCreateSecret } from "../../src/tokens/secret.js";
import { token as tokenCommand } from "../../src/cli/token.js";
import { UsageError } from "../../src/cli/usage-error.js";

const SECRET = new TextEncoder().encode("unit-test-secret-0123456789abcdef");
const HOUR = 3600_000;
const now = () => Math.floor(Date.now() / 1000);
const b64url = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/** A token signed with jose directly, so claims can be anything. */
function hs256(payload: JWTPayload, secret = SECRET): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(secret);
}

/** Asserts an unauthenticated BrokerError whose message matches. */
async function rejects(auth: Authenticator, header: string | null, message: RegExp): Promise<void> {
  await assert.rejects(auth.authenticate(header), (error: unknown) => {
    assert.ok(error instanceof BrokerError, `expected a BrokerError, got ${String(error)}`);
    assert.equal(error.code, "unauthenticated");
    assert.match(error.message, message);
    return true;
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "seqcast-auth-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

describe("RS256 / ES256 authenticators", () => {
  for (const alg of ["RS256", "ES256"] as const) {
    describe(alg, () => {
      let privateKey: CryptoKey;
      let otherKey: CryptoKey;
      let pemAuth: Authenticator;
      let jwksAuth: Authenticator;
      beforeAll(async () => {
        const pair = await generateKeyPair(alg, { extractable: true });
        privateKey = pair.privateKey;
        otherKey = (await generateKeyPair(alg)).privateKey;
        const pemPath = join(dir, `${alg}.pem`);
        writeFileSync(pemPath, await exportSPKI(pair.publicKey));
        const jwksPath = join(dir, `${alg}.jwks.json`);
        const other = await generateKeyPair(alg === "RS256" ? "ES256" : "RS256", { extractable: true });
        writeFileSync(
          jwksPath,
          JSON.stringify({
            keys: [
              { ...(await exportJWK(other.publicKey)), kid: "other", use: "sig" },
              { ...(await exportJWK(pair.publicKey)), kid: "k1", use: "sig" },
            ],
          }),
        );
        pemAuth = await createAuthenticator(authConfigFromEnv({ SEQCAST_JWT_PUBLIC_KEY: pemPath }, join(dir, "unused")));
        jwksAuth = await createAuthenticator(authConfigFromEnv({ SEQCAST_JWT_JWKS: jwksPath }, join(dir, "unused")));
      });

      const sign = (payload: JWTPayload, key: CryptoKey, kid = "k1") =>
        new SignJWT(payload).setProtectedHeader({ alg, kid, typ: "JWT" }).sign(key);

      it("accepts a token signed with the private key (PEM and JWKS)", async () => {
        const jwt = await sign({ sub: "alice", exp: now() + 60, seqcast: { admin: true, subscribe: ["news.>"] } }, privateKey);
        const expected = { user: "alice", admin: true, subscribe: ["news.>"] };
        assert.deepEqual(await pemAuth.authenticate(`Bearer ${jwt}`), expected);
        assert.deepEqual(await jwksAuth.authenticate(`Bearer ${jwt}`), expected);
      });

      it("rejects a token signed with another key", async () => {
        const jwt = await sign({ sub: "alice", exp: now() + 60 }, otherKey);
        await rejects(pemAuth, `Bearer ${jwt}`, /bad token signature/);
        await rejects(jwksAuth, `Bearer ${jwt}`, /bad token signature/);
      });

      it("rejects a token whose kid is not in the JWKS", async () => {
        const jwt = await sign({ sub: "alice", exp: now() + 60 }, privateKey, "unknown");
        await rejects(jwksAuth, `Bearer ${jwt}`, /no key in the broker's JWKS matches the token \(kid 'unknown', alg /);
      });

      it("rejects an HS256 token, also one MACed with the public key (algorithm confusion)", async () => {
        const pem = readFileSync(join(dir, `${alg}.pem`));
        for (const secret of [SECRET, new Uint8Array(pem)]) {
          const jwt = await hs256({ sub: "alice", exp: now() + 60, seqcast: { admin: true } }, secret);
          await rejects(pemAuth, `Bearer ${jwt}`, /token algorithm 'HS256' is not allowed; this broker accepts (RS256|ES256)/);
          await rejects(jwksAuth, `Bearer ${jwt}`, /token algorithm 'HS256' is not allowed; this broker accepts RS256, ES256/);
        }
      });

      it("rejects alg none and expired tokens", async () => {
        const unsigned = `${b64url({ alg: "none", typ: "JWT" })}.${b64url({ sub: "alice", exp: now() + 60 })}.`;
        await rejects(pemAuth, `Bearer ${unsigned}`, /algorithm 'none'/);
        await rejects(jwksAuth, `Bearer ${unsigned}`, /algorithm 'none'/);
        const expired = await sign({ sub: "alice", exp: now() - 600 }, privateKey);
        await rejects(pemAuth, `Bearer ${expired}`, /token expired at/);
        await rejects(jwksAuth, `Bearer ${expired}`, /token expired at/);
      });
    });
  }

  it("a PEM authenticator accepts only its key's algorithm", async () => {
    const ec = await generateKeyPair("ES256", { extractable: true });
    const auth = await createAuthenticator({ publicKeyPem: await exportSPKI(ec.publicKey) });
    const rsa = await generateKeyPair("RS256");
    const jwt = await new SignJWT({ sub: "alice", exp: now() + 60 }).setProtectedHeader({ alg: "RS256" }).sign(rsa.privateKey);
    await rejects(auth, `Bearer ${jwt}`, /token algorithm 'RS256' is not allowed; this broker accepts ES256/);
  });

  it("refuses unusable keys at start-up", async () => {
    await assert.rejects(createAuthenticator({ publicKeyPem: "not a key" }), /expected a PEM SPKI public key/);
    const p384 = await generateKeyPair("ES384", { extractable: true });
    await assert.rejects(createAuthenticator({ publicKeyPem: await exportSPKI(p384.publicKey) }), /ES256 needs P-256/);
    const jwks = join(dir, "bad.jwks.json");
    writeFileSync(jwks, "{ nope");
    await assert.rejects(createAuthenticator({ jwksPath: jwks }), /JWKS .*bad\.jwks\.json/);
    writeFileSync(jwks, JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0" }] }));
    await assert.rejects(createAuthenticator({ jwksPath: jwks }), /symmetric \('oct'\) keys are not accepted/);
    const pair = await generateKeyPair("ES256", { extractable: true });
    writeFileSync(jwks, JSON.stringify({ keys: [await exportJWK(pair.privateKey)] }));
    await assert.rejects(createAuthenticator({ jwksPath: jwks }), /contains a private key/);
    assert.throws(() => authConfigFromEnv({ SEQCAST_JWT_SECRET: "x", SEQCAST_JWT_JWKS: jwks }, dir), /set only one of/);
  });
});

describe("loadOrCreateSecret", () => {
  it("creates 32 random bytes with mode 0600 (and the directory), then reuses them", () => {
    const dataDir = join(dir, "fresh", "nested");
    const first = loadOrCreateSecret(dataDir);
    assert.equal(first.created, true);
    assert.equal(first.path, join(dataDir, "jwt-secret"));
    assert.equal(first.secret.length, 32);
    assert.equal(first.warning, undefined);
    if (process.platform !== "win32") assert.equal(statSync(first.path).mode & 0o777, 0o600);
    assert.deepEqual(new Uint8Array(readFileSync(first.path)), first.secret);
    const second = loadOrCreateSecret(dataDir);
    assert.equal(second.created, false);
    assert.deepEqual(second.secret, first.secret);
    assert.equal(second.warning, undefined);
    // Another data directory, another secret.
    assert.notDeepEqual(loadOrCreateSecret(join(dir, "fresh", "other")).secret, first.secret);
  });

  it("warns about a secret file readable by others, refuses an empty one", () => {
    const dataDir = join(dir, "loose");
    const { path } = loadOrCreateSecret(dataDir);
    if (process.platform !== "win32") {
      chmodSync(path, 0o644);
      assert.match(loadOrCreateSecret(dataDir).warning ?? "", /readable by others \(mode 0644\): run 'chmod 600/);
    }
    writeFileSync(path, "");
    assert.throws(() => loadOrCreateSecret(dataDir), /JWT secret file is empty/);
  });

  it("is what authConfigFromEnv uses when no key is configured; SEQCAST_JWT_SECRET wins", async () => {
    const dataDir = join(dir, "env");
    const config = authConfigFromEnv({}, dataDir);
    assert.deepEqual(config.secret, loadOrCreateSecret(dataDir).secret);
    assert.deepEqual(authConfigFromEnv({ SEQCAST_JWT_SECRET: "abc" }, dataDir), { secret: new TextEncoder().encode("abc") });
  });
});

/** Runs `seqcast token …` in-process, capturing stdout and stderr. */
async function runToken(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...args: unknown[]) => void out.push(args.join(" "));
  console.error = (...args: unknown[]) => void err.push(args.join(" "));
  try {
    const code = await tokenCommand(argv, env);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

describe("seqcast token", () => {
  it("prints only a token that the broker of the same data directory accepts", async () => {
    const dataDir = join(dir, "cli-data");
    const { code, stdout, stderr } = await runToken(
      ["--user", "alice", "--admin", "--rooms", "general, team.*", "--subscribe", "news.>", "--ttl", "2h", "--data-dir", dataDir],
      {},
    );
    assert.equal(code, 0);
    assert.match(stdout, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.match(stderr, /created .*jwt-secret/);
    const auth = await createAuthenticator(authConfigFromEnv({}, dataDir));
    assert.deepEqual(await auth.authenticate(`Bearer ${stdout}`), {
      user: "alice",
      admin: true,
      publish: ["general", "team.*"],
      subscribe: ["news.>"],
    });
    const payload = JSON.parse(Buffer.from(stdout.split(".")[1]!, "base64url").toString());
    assert.equal(payload.exp - payload.iat, 7200);
    // SEQCAST_DATA_DIR is the default data directory; the secret is reused.
    const again = await runToken(["--user", "bob"], { SEQCAST_DATA_DIR: dataDir });
    assert.equal(again.stderr, "");
    assert.deepEqual(await auth.authenticate(`Bearer ${again.stdout}`), { user: "bob", admin: false });
  });

  it("uses SEQCAST_JWT_SECRET when set", async () => {
    const { stdout } = await runToken(["--user", "carol", "--data-dir", join(dir, "never-created")], { SEQCAST_JWT_SECRET: "shared" });
    const auth = await createAuthenticator(authConfigFromEnv({ SEQCAST_JWT_SECRET: "shared" }, dir));
    assert.equal((await auth.authenticate(`Bearer ${stdout}`)).user, "carol");
    assert.throws(() => statSync(join(dir, "never-created")), /ENOENT/);
  });

  it("refuses asymmetric mode and bad arguments with a UsageError", async () => {
    const env = { SEQCAST_DATA_DIR: join(dir, "cli-usage") };
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [["--user", "alice"], { SEQCAST_JWT_PUBLIC_KEY: "/k.pem" }, /SEQCAST_JWT_PUBLIC_KEY is set: .*minted by the owner of the private key/],
      [["--user", "alice"], { SEQCAST_JWT_JWKS: "/k.json" }, /SEQCAST_JWT_JWKS is set/],
      [[], env, /--user NAME is required/],
      [["--user", "no good"], env, /is not a user name/],
      [["--user", "a", "--rooms", "bad room"], env, /room pattern "bad room"/],
      [["--user", "a", "--rooms", ","], env, /--rooms: no room patterns given/],
      [["--user", "a", "--ttl", "soon"], env, /--ttl: "soon" is not a duration/],
      [["--user", "a", "--frobnicate"], env, /frobnicate/],
    ];
    for (const [argv, e, message] of cases)
      await assert.rejects(runToken(argv, e), (error: unknown) => error instanceof UsageError && message.test(error.message));
  });

  it("prints help", async () => {
    const { code, stdout } = await runToken(["--help"], {});
    assert.equal(code, 0);
    assert.match(stdout, /seqcast token --user NAME/);
  });
});
