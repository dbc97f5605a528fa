/**
 * The README's browser data-parallel app ("### Data-parallel training in a
 * browser"): its ```ts block holds four files, each starting with a line
 * `// <name>.ts — …`. Tests take them from the README word for word, so the
 * README's example is what they compile and run.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const HEADING = "### Data-parallel training in a browser";
export const README_APP_FILES = ["replica.ts", "replicaWorker.ts", "trainer.ts", "main.ts"] as const;

/** name → source of each file of the README's example. */
export function readmeBrowserApp(readme = readFileSync("README.md", "utf8")): Record<(typeof README_APP_FILES)[number], string> {
  const at = readme.indexOf(HEADING);
  assert.ok(at >= 0, `README has no "${HEADING}" section`);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block, `the section "${HEADING}" has no \`\`\`ts block`);
  const files: Record<string, string> = {};
  let current: string | null = null;
  for (const line of block[1].split("\n")) {
    const start = /^\/\/ (\w+\.ts) — /.exec(line);
    if (start) {
      current = start[1];
      files[current] = "";
    }
    if (current !== null) files[current] += `${line}\n`;
  }
  assert.deepEqual(Object.keys(files), [...README_APP_FILES], "the README's example: its files, in order");
  return files as Record<(typeof README_APP_FILES)[number], string>;
}
