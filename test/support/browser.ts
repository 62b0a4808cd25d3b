import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { waitUntil } from "./wait.js";

/**
 * Real Chromium (Debian's package) driven by playwright-core, for the chat
 * page's tests. Never `npx playwright install`: the browser comes from apt
 * (.ci/run installs it when absent).
 */
export const CHROMIUM = "/usr/bin/chromium";
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** Screenshots and other artifacts of test runs (gitignored). */
export const TEST_OUTPUT = `${ROOT}test-output`;

/** Why the browser tests cannot run here, or undefined when they can. */
export function whyNoChromium(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium; .ci/run does)`;
}

/** Builds the page from src/web as the broker serves it (dist/web), so the tests never run a stale bundle. */
export function buildPage(): void {
  execFileSync(process.execPath, ["--import", "tsx", "scripts/build-web.ts"], { cwd: ROOT, stdio: "pipe" });
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
  });
}

export interface LogLine {
  seq: string;
  sender: string;
  text: string;
  time: string;
}

/** One person at the chat page, in a browser context of their own (own storage, own connections). */
export class ChatPageDriver {
  /** Errors the page threw: a test fails on any. */
  readonly errors: string[] = [];

  private constructor(
    readonly user: string,
    readonly context: BrowserContext,
    readonly page: Page,
  ) {
    page.on("pageerror", (error) => this.errors.push(error.message));
  }

  /** Opens `url` and signs in by name (the broker runs with --dev-login). */
  static async signIn(browser: Browser, url: string, user: string): Promise<ChatPageDriver> {
    const context = await browser.newContext({ viewport: { width: 1180, height: 720 } });
    const driver = new ChatPageDriver(user, context, await context.newPage());
    await driver.page.goto(url);
    await driver.page.getByLabel("Your name").fill(user);
    await driver.page.getByRole("button", { name: "Sign in" }).click();
    await driver.waitForStatus(/^Connected to /);
    return driver;
  }

  /** Types a line into the message box and presses Enter. */
  async send(text: string): Promise<void> {
    const box = this.page.getByLabel("Message");
    await box.fill(text);
    await box.press("Enter");
  }

  status(): Promise<string> {
    return this.page.locator("#status").innerText();
  }

  async waitForStatus(pattern: RegExp, timeoutMs = 15_000): Promise<void> {
    let seen = "";
    await waitUntil(async () => pattern.test((seen = await this.status())), () => `${this.user}'s status to match ${pattern}, saw "${seen}"`, timeoutMs);
  }

  /** The messages of the room shown, in the page's order. */
  lines(): Promise<LogLine[]> {
    return this.page.locator("#log li[data-seq]").evaluateAll((items) =>
      items.map((li) => ({
        seq: (li as HTMLElement).dataset.seq ?? "",
        sender: (li as HTMLElement).dataset.sender ?? "",
        text: li.querySelector(".text")?.textContent ?? "",
        time: li.querySelector(".time")?.textContent ?? "",
      })),
    );
  }

  /** Notes in the log (joins, resets). */
  notes(): Promise<string[]> {
    return this.page.locator("#log li.note").allInnerTexts();
  }

  async waitForLines(count: number, timeoutMs = 15_000): Promise<LogLine[]> {
    let seen: LogLine[] = [];
    await waitUntil(async () => (seen = await this.lines()).length >= count, () => `${this.user}: ${count} messages, saw ${JSON.stringify(seen)}`, timeoutMs);
    return seen;
  }

  /** `user:state` for everyone in the "Here now" list. */
  who(): Promise<string[]> {
    return this.page.locator("#who-list li[data-user]").evaluateAll((items) =>
      items.map((li) => `${(li as HTMLElement).dataset.user}:${(li as HTMLElement).dataset.state}`),
    );
  }

  async waitForWho(expected: string[], timeoutMs = 15_000): Promise<void> {
    let seen: string[] = [];
    await waitUntil(
      async () => JSON.stringify((seen = await this.who())) === JSON.stringify(expected),
      () => `${this.user}'s "Here now" to be ${expected.join(", ")}, saw ${seen.join(", ")}`,
      timeoutMs,
    );
  }

  /** Shows a room (or "Private messages") by clicking it in the rooms list. */
  async open(label: string): Promise<void> {
    await this.page.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: new RegExp(`^${label}`) }).click();
  }

  async screenshot(name: string): Promise<string> {
    mkdirSync(TEST_OUTPUT, { recursive: true });
    const path = `${TEST_OUTPUT}/${name}`;
    await this.page.screenshot({ path });
    return path;
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}
