import { createMemoryEngine } from "../../src/engine/memory.js";
import { engineConformance } from "./conformance.js";

engineConformance("memory", (options) => createMemoryEngine(options));
