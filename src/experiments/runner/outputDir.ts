import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { readJsonIfExists, writeFileAtomic } from "../../io/files.js";

/** What an experiment's output directory remembers, to refuse resuming with other settings. */
interface DirState<C> {
  config: C;
  limits: object;
  wallSeconds: number;
}

/** The keys whose values differ between two settings objects, worded "key: then, now". */
export function differences(a: object, b: object): string[] {
  const out: string[] = [];
  const A = a as Record<string, unknown>;
  const B = b as Record<string, unknown>;
  for (const k of new Set([...Object.keys(A), ...Object.keys(B)])) {
    if (JSON.stringify(A[k]) !== JSON.stringify(B[k])) out.push(`${k}: ${JSON.stringify(A[k])} then, ${JSON.stringify(B[k])} now`);
  }
  return out;
}

/**
 * Make `outDir` ready for a run of `command`, with finished results in
 * `outDir/<doneDir>` and checkpoints in `outDir/checkpoints`:
 * - `overwrite` discards earlier results;
 * - `resume` continues them, refusing when `comparable(config)` or the image
 *   limits differ from the earlier run's;
 * - otherwise earlier results are refused, so nothing is lost by accident.
 * Returns the wall time spent before (resumed runs add up) and a function that
 * records the total.
 */
export function prepareOutputDir<C>(options: {
  command: string;
  outDir: string;
  doneDir: string;
  config: C;
  limits: object;
  resume?: boolean;
  overwrite?: boolean;
  /** The part of the settings that must not change across a resume. */
  comparable: (config: C) => object;
}): { wallBefore: number; saveWallSeconds: (seconds: number) => void } {
  const { command, outDir, doneDir, config, limits } = options;
  const statePath = join(outDir, "state.json");
  const previous = readJsonIfExists<DirState<C>>(statePath);
  const hasEarlier = previous !== null || existsSync(join(outDir, doneDir)) || existsSync(join(outDir, "checkpoints"));
  if (options.overwrite) {
    for (const p of [doneDir, "checkpoints", "state.json"]) rmSync(join(outDir, p), { recursive: true, force: true });
  } else if (options.resume && previous !== null) {
    const mismatch = differences(options.comparable(previous.config), options.comparable(config));
    if (mismatch.length > 0 || JSON.stringify(previous.limits) !== JSON.stringify(limits)) {
      throw new Error(
        `${command} --resume: ${outDir} holds a run made with other settings (${mismatch.join("; ") || "different image limits"}). Resume with the same options, or choose another --out.`,
      );
    }
  } else if (!options.resume && hasEarlier) {
    throw new Error(
      `${command}: ${outDir} already holds results of an earlier run. Continue it with --resume, discard it with --overwrite, or choose another --out.`,
    );
  }
  mkdirSync(join(outDir, doneDir), { recursive: true });
  mkdirSync(join(outDir, "checkpoints"), { recursive: true });
  const wallBefore = options.resume && !options.overwrite && previous ? previous.wallSeconds : 0;
  const saveWallSeconds = (wallSeconds: number) =>
    writeFileAtomic(statePath, JSON.stringify({ config, limits, wallSeconds } satisfies DirState<C>, null, 2));
  saveWallSeconds(wallBefore);
  return { wallBefore, saveWallSeconds };
}
