/**
 * The README's "API at a glance" program, run as a user would: the package
 * packed by `npm pack`, installed into an empty folder, and the README's
 * block saved there as main.mjs word for word — so it can only use the
 * public entry points — then run with MNIST from ../shared/data. It must
 * print the test accuracy after its epoch (> 95%) and write a safetensors
 * file that loads back into the same network.
 *
 * Runs once, in the reference suite (the program runs in its own process,
 * whatever backend the suite selected). Skipped without ../shared/data/mnist,
 * except under CI=true, where missing data is a failure.
 */
import { after, it } from "node:test";
import { describeOrSkip } from "../skip.js";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSafetensors, nn } from "../../src/index.js";
import { installPackedCovshift } from "./installPacked.js";
import { realData } from "../realData.js";

const MNIST = realData("mnist"); // the program trains on ../shared/data/mnist
const skip = process.env.COVSHIFT_TEST_BACKEND === "wasm" ? "runs once, in the reference suite (the program is its own process)" : MNIST.skip;

/** The first ```js block after the heading "## The API at a glance". */
export function readmeProgram(readme: string): string {
  const at = readme.indexOf("## The API at a glance");
  assert.ok(at >= 0, 'README has no "## The API at a glance" section');
  const block = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block, "the API section has no ```js block");
  return block[1];
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describeOrSkip("the README's API program", { skip }, () => {
  it("runs verbatim against the packed package in an empty folder: > 95% test accuracy after one epoch, a safetensors file PyTorch's keys", () => {
    const program = readmeProgram(readFileSync("README.md", "utf8"));
    const dir = installPackedCovshift("covshift-readme-");
    dirs.push(dir);
    writeFileSync(join(dir, "main.mjs"), program);

    const run = spawnSync(process.execPath, ["main.mjs"], {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, COVSHIFT_DATA: MNIST.dir },
      timeout: 15 * 60_000,
    });
    assert.equal(run.status, 0, `main.mjs failed:\n${run.stderr}`);
    const accuracy = /epoch 1: test accuracy ([\d.]+)%/.exec(run.stdout);
    assert.ok(accuracy, `no accuracy line in:\n${run.stdout}`);
    assert.ok(Number(accuracy[1]) > 95, `test accuracy ${accuracy[1]}% after one epoch`);
    assert.match(run.stdout, /with population statistics: 9\d\.\d\d%/);
    assert.match(run.stdout, /Sequential\(\n {2}\(0\): Flatten/);

    // The saved network loads into the README's architecture under PyTorch's keys.
    const state = loadSafetensors(readFileSync(join(dir, "mnist-bn.safetensors")));
    assert.deepEqual(Object.keys(state).sort(), [
      "1.weight",
      "2.bias",
      "2.num_batches_tracked",
      "2.running_mean",
      "2.running_var",
      "2.weight",
      "4.bias",
      "4.weight",
    ]);
    const model = new nn.Sequential(
      new nn.Flatten(),
      new nn.Linear(784, 100, { bias: false }),
      new nn.BatchNorm1d(100),
      new nn.ReLU(),
      new nn.Linear(100, 10),
    );
    model.loadStateDict(state);
  });
});
