/**
 * Finding Chromium for the browser suites. Where it is missing the suites
 * skip — except under CI=true, where a missing browser (or playwright-core)
 * is an error: .ci/run installs Debian's chromium, so its absence there
 * means the browser tests would silently never run.
 */
import { existsSync } from "node:fs";

export const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** The flags the project runs Chromium with (headless, no sandbox as root, nothing fetched from the network). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** playwright-core, or null with the reason the suite skips; under CI=true a missing browser throws instead. */
export async function loadPlaywright(): Promise<{ playwright: typeof import("playwright-core") | null; skipReason: string | false }> {
  let reason: string;
  if (!existsSync(chromiumPath)) {
    reason = `no Chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`;
  } else {
    try {
      return { playwright: await import("playwright-core"), skipReason: false };
    } catch (err) {
      reason = `playwright-core cannot be imported (npm ci): ${(err as Error).message}`;
    }
  }
  if (process.env.CI === "true") throw new Error(`the browser tests cannot run under CI: ${reason}; .ci/run installs Debian's chromium`);
  return { playwright: null, skipReason: reason };
}
