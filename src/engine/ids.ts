import { randomBytes, randomUUID } from "node:crypto";

/** A fresh epoch: 16 random hex characters, unguessable and unique in practice. */
export const newEpoch = (): string => randomBytes(8).toString("hex");

/** A message id: a random UUID (cheap: Node caches entropy for it). */
export const newMessageId = (): string => randomUUID();
