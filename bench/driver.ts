/**
 * Persistent drivers for interleaved rounds (bench/interleave.ts): each side
 * of a comparison — covshift's default path, PyTorch at one thread count, a
 * TF.js backend — runs in its own long-lived process that builds its step
 * once and then, on command, runs it for a given time and answers with the
 * steps done, the wall time and the process's CPU time. The caller sends one
 * command at a time, so only one side runs at any moment, and it alternates
 * them round by round: the machine's drift hits every side alike.
 *
 * The protocol, one JSON object per line each way (stdin → stdout; progress
 * and errors of the side on stderr):
 *
 *   {"op": "hello"}                                  → {"ok": true, "side", "version", "threads", "work": [...], ...}
 *   {"op": "prepare", "work": W, "warmupSeconds": s} → builds W's step, runs it for s s → {"ok": true, "work", "warmupCalls"}
 *   {"op": "run", "work": W, "seconds": s, "warmupCalls": k}
 *        → k untimed calls, then W's step until s seconds have passed (at least one call):
 *          {"ok": true, "work", "steps", "wallSeconds", "cpuSeconds", "settleSeconds", "settleCpuSeconds",
 *           "idleWallSeconds", "idleCpuSeconds"}
 *   {"op": "quit"}                                   → {"ok": true}, and the process ends
 *
 * A failure is answered {"ok": false, "error": "..."}; a side that cannot run
 * at all (no PyTorch, no TF.js) answers its first command {"ok": false,
 * "unavailable": "why"}. cpuSeconds counts all the process's threads over the
 * timed steps. Before answering a run the driver waits until its process
 * stops using CPU (settle(): PyTorch's OpenBLAS workers spin ~0.13 s at a
 * full core after an MLP step; V8's concurrent GC may still run), at most
 * 1 s — settleSeconds and settleCpuSeconds say what that took — so that
 * nothing of one side's turn runs on into the next side's. idleCpuSeconds
 * is what the process spent anyway between its previous answer and this
 * command, while the other sides ran: a check that a side sitting out does
 * not slow the one running.
 *
 * bench/torch_bench.py --serve speaks the same protocol in Python.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";

export interface RunReply {
  ok: true;
  work: string;
  steps: number;
  wallSeconds: number;
  cpuSeconds: number;
  settleSeconds: number;
  settleCpuSeconds: number;
  idleWallSeconds: number;
  idleCpuSeconds: number;
}

export interface HelloReply {
  ok: true;
  side: string;
  version: string;
  threads: number;
  /** The work names this side can prepare. */
  work: string[];
  [key: string]: unknown;
}

type Reply = { ok: true; [key: string]: unknown } | { ok: false; error?: string; unavailable?: string };

/** A side's process, driven one command at a time. */
export class Driver {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private stderrTail = "";
  private exited: string | null = null;
  /** Resolves once the process has ended and its output streams are closed (its stderr read to the end). */
  private readonly closed: Promise<void>;

  /** Starts `command args` (its stderr is kept and shown only when it fails). */
  constructor(
    readonly name: string,
    command: string,
    args: string[],
    private readonly timeoutMs = 120_000,
  ) {
    this.child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (s: string) => (this.stderrTail = (this.stderrTail + s).slice(-2000)));
    this.child.on("error", (err) => (this.exited = err.message));
    // A write to a driver that has just ended (EPIPE) must not be an uncaught exception: its end is
    // reported by "exit" and by its closed output, which request() and close() wait for.
    this.child.stdin.on("error", () => {});
    this.child.on("exit", (code, signal) => (this.exited ??= `exited (${signal ?? `code ${code}`})`));
    this.closed = new Promise((resolve) => this.child.once("close", () => resolve()));
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  /** Sends one command and waits for its answer; throws with the side's error or its stderr's last lines. */
  async request(cmd: Record<string, unknown>): Promise<Reply> {
    if (this.exited !== null) throw new Error(`${this.name}: the driver ${this.exited}${this.stderrHint()}`);
    this.child.stdin.write(JSON.stringify(cmd) + "\n");
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name}: no answer to ${JSON.stringify(cmd)} within ${this.timeoutMs / 1000} s`)), this.timeoutMs);
    });
    try {
      const next = await Promise.race([this.lines.next(), timeout]);
      if (next.done) {
        // Its last words on stderr may still be on their way.
        await Promise.race([this.closed, new Promise((r) => setTimeout(r, 1000))]);
        throw new Error(`${this.name}: the driver closed its output before answering ${JSON.stringify(cmd)} (${this.exited ?? "still running"})${this.stderrHint()}`);
      }
      try {
        return JSON.parse(next.value) as Reply;
      } catch {
        throw new Error(`${this.name}: expected one JSON line in answer to ${JSON.stringify(cmd)}, got ${JSON.stringify(next.value.slice(0, 200))}`);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** request, but a failure answer becomes an exception. */
  async must(cmd: Record<string, unknown>): Promise<{ ok: true; [key: string]: unknown }> {
    const r = await this.request(cmd);
    if (!r.ok) throw new Error(`${this.name}: ${cmd.op} failed: ${r.unavailable ?? r.error ?? "no reason given"}`);
    return r;
  }

  async hello(): Promise<HelloReply> {
    return (await this.must({ op: "hello" })) as HelloReply;
  }

  async prepare(work: string, warmupSeconds: number): Promise<void> {
    await this.must({ op: "prepare", work, warmupSeconds });
  }

  async run(work: string, seconds: number, warmupCalls: number): Promise<RunReply> {
    const r = await this.must({ op: "run", work, seconds, warmupCalls });
    for (const key of ["steps", "wallSeconds", "cpuSeconds", "settleSeconds", "settleCpuSeconds", "idleWallSeconds", "idleCpuSeconds"]) {
      if (typeof r[key] !== "number" || !Number.isFinite(r[key]) || (r[key] as number) < 0) {
        throw new Error(`${this.name}: run answered ${key} = ${JSON.stringify(r[key])}, expected a number ≥ 0 (answer: ${JSON.stringify(r)})`);
      }
    }
    if ((r.steps as number) < 1) throw new Error(`${this.name}: run answered steps = ${r.steps}, expected at least one step`);
    return r as unknown as RunReply;
  }

  /** Asks the process to end, and kills it if it has not within a second. */
  async close(): Promise<void> {
    if (this.exited !== null) return;
    const gone = this.closed;
    try {
      this.child.stdin.end(JSON.stringify({ op: "quit" }) + "\n");
    } catch {
      // already closed
    }
    const timer = setTimeout(() => this.child.kill(), 1000);
    await gone;
    clearTimeout(timer);
  }

  private stderrHint(): string {
    const tail = this.stderrTail.trim().split("\n").slice(-3).join(" | ");
    return tail ? `; its stderr ends: ${tail}` : "";
  }
}

/**
 * The side of the protocol in a Node process: answers commands on stdin until
 * "quit" or the end of input. `build(work)` returns the step for a work name
 * (or throws for an unknown one); `hello` what this side is.
 */
export function serve(side: { hello: () => Omit<HelloReply, "ok">; build: (work: string) => () => void } | { unavailable: string }): void {
  if ("unavailable" in side) {
    // Answer the first command with the reason, then end.
    createInterface({ input: process.stdin }).once("line", () => process.stdout.write(JSON.stringify({ ok: false, unavailable: side.unavailable }) + "\n", () => process.exit(0)));
    return;
  }
  const steps = new Map<string, () => void>();
  const answer = (o: object) => process.stdout.write(JSON.stringify(o) + "\n");
  const cpuNow = () => {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1e6;
  };
  const stepFor = (work: unknown) => {
    const fn = steps.get(String(work));
    if (fn === undefined) throw new Error(`work ${JSON.stringify(work)} was not prepared; send {"op": "prepare", "work": ...} first`);
    return fn;
  };
  let idleWall = performance.now() / 1000;
  let idleCpu = cpuNow();
  const rl = createInterface({ input: process.stdin });
  // One command at a time, in order, even if the caller sends the next before the answer.
  let queue = Promise.resolve();
  rl.on("line", (line) => {
    const receivedWall = performance.now() / 1000;
    const receivedCpu = cpuNow();
    queue = queue.then(() => handle(line, receivedWall, receivedCpu));
  });
  const handle = async (line: string, receivedWall: number, receivedCpu: number): Promise<void> => {
    if (line.trim() === "") return;
    let out: object;
    try {
      const cmd = JSON.parse(line) as Record<string, unknown>;
      switch (cmd.op) {
        case "hello":
          out = { ok: true, ...side.hello() };
          break;
        case "prepare": {
          const work = String(cmd.work);
          const fn = side.build(work);
          steps.set(work, fn);
          const end = performance.now() + Number(cmd.warmupSeconds ?? 1) * 1000;
          let calls = 0;
          do {
            fn();
            calls++;
          } while (performance.now() < end);
          out = { ok: true, work, warmupCalls: calls };
          break;
        }
        case "run": {
          const fn = stepFor(cmd.work);
          for (let i = 0; i < Number(cmd.warmupCalls ?? 1); i++) fn();
          const ms = Number(cmd.seconds ?? 0.5) * 1000;
          const c0 = cpuNow();
          const t0 = performance.now();
          let t = t0;
          let n = 0;
          do {
            fn();
            n++;
            t = performance.now();
          } while (t - t0 < ms);
          const cpuSeconds = cpuNow() - c0;
          const s = await settle(cpuNow);
          out = {
            ok: true,
            work: cmd.work,
            steps: n,
            wallSeconds: (t - t0) / 1000,
            cpuSeconds,
            settleSeconds: s.wall,
            settleCpuSeconds: s.cpu,
            idleWallSeconds: receivedWall - idleWall,
            idleCpuSeconds: receivedCpu - idleCpu,
          };
          break;
        }
        case "quit":
          // Exit outright: the side may hold worker threads or timers that would keep it alive.
          process.stdout.write(JSON.stringify({ ok: true }) + "\n", () => process.exit(0));
          rl.close();
          return;
        default:
          throw new Error(`unknown op ${JSON.stringify(cmd.op)}; expected hello, prepare, run or quit`);
      }
    } catch (err) {
      out = { ok: false, error: String((err as Error)?.message ?? err) };
    }
    answer(out);
    idleWall = performance.now() / 1000;
    idleCpu = cpuNow();
  };
}

/**
 * Waits until this process uses under `busy` of a core over a `window` of
 * milliseconds — its helper threads (V8's concurrent GC and compilers, a
 * peer's BLAS workers) have stopped — at most maxMs: what a driver does
 * before answering a run, so that nothing of its turn spills into the next
 * side's. bench/torch_bench.py settle() is the same in Python.
 */
export async function settle(cpuNow: () => number, maxMs = 1000, windowMs = 5, busy = 0.1): Promise<{ wall: number; cpu: number }> {
  const t0 = performance.now();
  const cStart = cpuNow();
  while (performance.now() - t0 < maxMs) {
    const c0 = cpuNow();
    await new Promise((r) => setTimeout(r, windowMs));
    if (cpuNow() - c0 < (busy * windowMs) / 1000) break;
  }
  return { wall: (performance.now() - t0) / 1000, cpu: cpuNow() - cStart };
}
