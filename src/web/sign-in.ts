import { tokenSubject } from "./format.js";

// Where the page's token comes from: the broker's dev login (only when it
// runs with `serve --dev-login`), or a token the user pastes. The token is
// kept for this tab only (sessionStorage): a reload stays signed in,
// closing the tab forgets it.

export interface Credentials {
  token: string;
  user: string;
}

const STORAGE_KEY = "seqcast.credentials";

/** Whether the broker signs users in by name (GET /config.json, see src/server/web.ts). */
export async function devLoginEnabled(): Promise<boolean> {
  try {
    const response = await fetch("/config.json", { cache: "no-store" });
    return response.ok && ((await response.json()) as { devLogin?: boolean }).devLogin === true;
  } catch {
    return false;
  }
}

/** A short-lived token for `user` from the broker's dev login. Throws an Error in plain words. */
export async function devLogin(user: string): Promise<Credentials> {
  let response: Response;
  try {
    response = await fetch("/dev/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user }),
    });
  } catch {
    throw new Error("Cannot reach the broker. Is it running?");
  }
  const body = (await response.json().catch(() => ({}))) as { token?: string; error?: string };
  if (response.status === 404) throw new Error("This broker does not sign users in by name: paste a token instead.");
  if (!response.ok || !body.token) throw new Error(body.error ? `Cannot sign in: ${body.error}.` : `Cannot sign in (HTTP ${response.status}).`);
  return { token: body.token, user };
}

/** A pasted token, checked for shape only: the broker judges it on the first call. */
export function pastedToken(text: string): Credentials {
  const token = text.trim();
  if (token === "") throw new Error("Paste your token first.");
  const user = tokenSubject(token);
  if (!user) throw new Error("That is not a token: a token has three parts separated by dots (header.payload.signature).");
  return { token, user };
}

export const savedCredentials = {
  get(): Credentials | undefined {
    try {
      const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null") as Credentials | null;
      return value?.token && value.user ? value : undefined;
    } catch {
      return undefined;
    }
  },
  set(credentials: Credentials): void {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
  },
  clear(): void {
    sessionStorage.removeItem(STORAGE_KEY);
  },
};
