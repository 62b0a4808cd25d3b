import { afterAll } from "vitest";
import { createRedisEngine } from "../../src/engine/redis.js";
import { deleteKeys, SHARED_REDIS_URL, testPrefix } from "../support/redis.js";
import { engineConformance } from "./conformance.js";

const prefix = testPrefix("conformance");
afterAll(() => deleteKeys(SHARED_REDIS_URL, prefix));

const presenceTtlMs = 1000;
engineConformance("redis", (options) => createRedisEngine({ ...options, url: SHARED_REDIS_URL, prefix, presenceTtlMs }), { presenceTtlMs });
