import { afterAll, beforeAll, describe, it } from "vitest";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from "jose";
import { authConfigFromEnv, createAuthenticator, type Authenticator } from "../../src/server/auth.js";
import { loadOrCreateSecret } from "../../src/tokens/secret.js";
import { token as tokenCommand } from "../../src/cli/token.js";
import { UsageError } from "../../src/cli/usage-error.js";
import { b64url, hs256, now, rejects, SECRET } from "../support/auth.js";

/**
 * Where the broker's keys come from: a PEM or JWKS public key (RS256, ES256), or the
 * HS256 secret file of the data directory, which `seqcast token` signs with. Apart
 * from auth.test.ts (what a token must be) because these tests write key files to a
 * scratch directory and read the environment the way the broker does at start-up.
 */

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "seqcast-auth-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
