/**
 * `describe` that, when it skips, still shows up in the counts. Node 20's
 * runner leaves a skipped `describe` out of "# skipped" (and its tests out
 * of "# tests"), so `npm test` said "skipped 0" while the browser suites
 * were not running at all. A skipped suite becomes one skipped test named
 * after it, with the reason: "ok N - … # SKIP no Chromium at …", counted.
 */
import { describe, it, type TestOptions } from "node:test";

export function describeOrSkip(name: string, options: TestOptions, fn: () => void): void {
  if (options.skip) {
    it(name, { skip: options.skip }, () => {});
    return;
  }
  describe(name, options, fn);
}
