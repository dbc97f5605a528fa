/**
 * PyTorch on the same work, in the same run: runs bench/torch_bench.py with
 * Debian's `/usr/bin/python3` (where python3-torch is installed; the
 * `python3` first on PATH may be another interpreter) and reads the JSON it
 * prints. COVSHIFT_BENCH_PYTHON names another interpreter.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface TorchResults {
  available: boolean;
  notes: string[];
  /** The interpreter run, and its version. */
  python?: string;
  pythonVersion?: string;
  torch?: string;
  defaultThreads?: number;
  parallelInfo?: string;
  /** cpuMsPerStep: the best of the process's CPU time per step (all its threads). */
  mlp: { threads: number; network: "baseline" | "batchnorm"; stepsPerSecond: number; medianStepsPerSecond: number; msPerStep: number; cpuMsPerStep?: number }[];
  gemm: { threads: number; case: string; M: number; N: number; K: number; gflops: number; medianGflops: number }[];
  bn: { threads: number; case: string; bytesPerStep: number; opGBs: number; opMsPerStep: number; kernelGBs?: number; kernelMsPerStep?: number }[];
  conv: { threads: number; msPerStep: number; medianMsPerStep: number }[];
}

/** bench/torch_bench.py, found from dist/bench/ or bench/. */
const SCRIPT = fileURLToPath(new URL(import.meta.url.includes("/dist/bench/") ? "../../bench/torch_bench.py" : "./torch_bench.py", import.meta.url));

/** The interpreter that runs PyTorch: Debian's /usr/bin/python3 (with python3-torch), or COVSHIFT_BENCH_PYTHON. */
export function torchPython(): string {
  return process.env.COVSHIFT_BENCH_PYTHON ?? "/usr/bin/python3";
}

export function benchTorch(options: { quick: boolean; sections: string[]; threads: number[] }, log: (s: string) => void): TorchResults {
  const python = torchPython();
  const empty = { mlp: [], gemm: [], bn: [], conv: [] };
  log(`pytorch via ${python} ${SCRIPT}`);
  const args = [SCRIPT, "--only", options.sections.join(","), "--threads", options.threads.join(",")];
  if (options.quick) args.push("--quick");
  // Progress goes to our stderr as it comes; the JSON arrives on stdout.
  const run = spawnSync(python, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 * 2 ** 20, timeout: 20 * 60_000 });
  if (run.error !== undefined || run.status !== 0) {
    return { available: false, notes: [`PyTorch not measured: ${python} ${args.join(" ")} failed (${run.error?.message ?? `exit ${run.status}`})`], ...empty };
  }
  // The script checks `import torch` itself (one interpreter start instead of two).
  const parsed = JSON.parse(run.stdout) as (Omit<TorchResults, "available"> & { notes: string[] }) | { unavailable: string };
  if ("unavailable" in parsed) return { available: false, notes: [`PyTorch not measured with ${python}: ${parsed.unavailable}`], ...empty };
  return { ...parsed, available: true, python };
}
