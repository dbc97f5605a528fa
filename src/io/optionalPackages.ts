/**
 * The packages only the `covshift` command needs — its option parser and
 * progress bars, and the chart libraries of its reports — are optional peer
 * dependencies: `npm install covshift` does not pull them (the library needs
 * none of them), and the command loads them when it runs. Missing ones get
 * one message naming every missing package and the command that installs
 * them. Node-only (reads the package's own package.json).
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** What the CLI needs, and what for. */
export const CLI_PACKAGES = ["commander", "cli-progress"] as const;
export const CHART_PACKAGES = ["vega", "vega-lite", "@resvg/resvg-js"] as const;

interface OwnPackageJson {
  peerDependencies?: Record<string, string>;
}

/** `name@range` as covshift's package.json accepts it (just `name` if unlisted). */
function spec(name: string): string {
  const own = require("../../../package.json") as OwnPackageJson;
  const range = own.peerDependencies?.[name];
  return range === undefined ? name : `${name}@${range}`;
}

/** True when `name` resolves from covshift's own folder (where Node will look for it). */
function installed(name: string): boolean {
  try {
    require.resolve(`${name}/package.json`);
    return true;
  } catch {
    // A package whose `exports` hides package.json still resolves by its main entry.
    try {
      require.resolve(name);
      return true;
    } catch {
      return false;
    }
  }
}

/** The message for missing optional packages (every one at once), or null when all are there. */
export function missingPackagesMessage(names: readonly string[], purpose: string): string | null {
  const missing = names.filter((n) => !installed(n));
  if (missing.length === 0) return null;
  const all = [...CLI_PACKAGES, ...CHART_PACKAGES].map(spec).join(" ");
  return (
    `${purpose} needs ${missing.map((n) => `"${n}"`).join(", ")}, not installed. ` +
    `These are optional dependencies of covshift: the library does not need them, only the command does. ` +
    `Install the command's packages next to covshift:\n  npm install ${all}`
  );
}

/** Throws the message of {@link missingPackagesMessage} if any of `names` is missing. */
export function requirePackages(names: readonly string[], purpose: string): void {
  const message = missingPackagesMessage(names, purpose);
  if (message !== null) throw new Error(message);
}
