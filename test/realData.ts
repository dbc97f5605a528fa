/**
 * Tests that need the real data sets in ../shared/data (from the repository
 * root; /work/shared/data on the project's machine) declare it in one line:
 *
 *     const MNIST = realData("mnist"); // needs ../shared/data/mnist
 *     it("…", { skip: MNIST.skip }, () => load(MNIST.dir));
 *
 * Outside CI, when the folder (or the named file) is absent, `skip` is the
 * reason "needs ../shared/data/mnist — see README" and the test is reported
 * as skipped with it. Under CI=true nothing is skipped: reading `dir` fails
 * the test with the same sentence instead of a raw ENOENT deep inside.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

export type Dataset = "mnist" | "cifar10";

/** A file each data set must have for the tests that use it. */
const PROBE: Record<Dataset, string> = { mnist: "train-images-idx3-ubyte.gz", cifar10: "data_batch_1.bin" };

export interface RealData {
  /** The folder; under CI=true with the data absent, reading it throws the "needs …" message. */
  readonly dir: string;
  /** false when the data is there (or under CI=true); else why the tests skip. */
  readonly skip: string | false;
}

export function realData(dataset: Dataset): RealData {
  const rel = `../shared/data/${dataset}`;
  const dir = resolve(rel);
  const present = existsSync(join(dir, PROBE[dataset]));
  const reason = `needs ${rel} — see README ("Data")`;
  const ci = process.env.CI === "true";
  return {
    get dir() {
      if (!present && ci) throw new Error(`${reason}: ${join(dir, PROBE[dataset])} is missing, and under CI=true a missing data set is a failure, not a skip`);
      return dir;
    },
    skip: present || ci ? false : reason,
  };
}
