"""PyTorch on the same work as `npm run bench` (bench/index.ts runs this script).

Measures, at each thread count given (torch.set_num_threads):
  mlp   one SGD step (zero_grad, forward, loss, backward, step) of the §4.1
        network, 784-100-100-100-10 sigmoid, N(0, 0.01²) weights, batch 60,
        lr 0.01, momentum 0.9; with BN: Linear without bias → BatchNorm1d → Sigmoid
  gemm  C = op(A)·op(B) at the shapes of bench/measure.ts (torch.mm, out=)
  bn    F.batch_norm forward + backward through autograd (dx, dγ, dβ), and the
        aten kernels (native_batch_norm + native_batch_norm_backward) alone
  conv  Conv2d(32→32, 3×3, pad 1, no bias) → BatchNorm2d → ReLU on (64, 32, 16, 16):
        forward, backward from a fixed upstream gradient (with dx), SGD step

Timing as bench/measure.ts: a warm-up, then rounds of at least round_seconds,
the best round's time per call. Prints one JSON object on stdout; progress on stderr.

  /usr/bin/python3 bench/torch_bench.py [--quick] [--only mlp,gemm,bn,conv] [--threads 1,2]

With --serve, a persistent driver for interleaved rounds (bench/interleave.ts):
it stays alive at one thread count and answers one JSON command per line on
stdin with one JSON line on stdout (the protocol of bench/driver.ts):

  {"op": "hello"}                                     -> {"ok": true, "side": "pytorch", "version", "threads", ...}
  {"op": "prepare", "work": "mlp-bn"|"conv", "warmupSeconds": s}   builds the step, runs it for s seconds
  {"op": "run", "work": W, "seconds": s, "warmupCalls": k}         k untimed calls, then the step until s seconds
        -> {"ok": true, "steps", "wallSeconds", "cpuSeconds", "settleSeconds", "settleCpuSeconds",
            "idleWallSeconds", "idleCpuSeconds"}
  {"op": "quit"}

cpuSeconds is the process's CPU time (all its threads) over the timed steps.
Before answering, the driver waits until its worker threads stop using CPU
(OpenBLAS and OpenMP workers spin for a while after their work: up to a
tenth of a second), so that they do not run on into the next side's turn:
settleSeconds and settleCpuSeconds say how long that took and what it cost.
idleCpuSeconds is the CPU it spent anyway between its previous answer and
this command, while the other sides ran.

  /usr/bin/python3 bench/torch_bench.py --serve --threads 1
"""
import argparse
import json
import platform
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # the caller reports PyTorch as not measured, and runs on
    if "--serve" in sys.argv:  # the driver answers the first command with the reason, then ends
        sys.stdin.readline()
        print(json.dumps({"ok": False, "unavailable": f"import torch failed: {e}"}), flush=True)
    else:
        print(json.dumps({"unavailable": f"import torch failed: {e}"}))
    sys.exit(0)

EFFORT = {
    # Same budgets as bench/measure.ts `efforts`.
    "quick": {"fast": dict(rounds=5, round_seconds=0.02, warmup_ms=100, warmup_calls=1, max_seconds=0.3),
              "slow": dict(rounds=2, round_seconds=0.0, warmup_ms=0, warmup_calls=0, max_seconds=1)},
    "full": {"fast": dict(rounds=20, round_seconds=0.05, warmup_ms=400, warmup_calls=3, max_seconds=3),
             "slow": dict(rounds=5, round_seconds=0.0, warmup_ms=300, warmup_calls=2, max_seconds=10)},
}

GEMM_CASES = [
    ("64×784×112 NN", False, False, 64, 112, 784),
    ("Linear fwd x·Wᵀ NT", False, True, 60, 100, 784),
    ("Linear dx = dy·W NN", False, False, 60, 784, 100),
    ("Linear dW = dyᵀ·x TN", True, False, 100, 784, 60),
    ("256³ NN", False, False, 256, 256, 256),
]

BN_CASES = [
    ("(60, 100)", [60, 100]),
    ("(128, 32, 16, 16)", [128, 32, 16, 16]),
    ("(64, 64, 32, 32)", [64, 64, 32, 32]),
]


def timed_round(fn, seconds):
    """Calls fn until `seconds` have passed (at least once): (calls, wall seconds, process CPU seconds, all threads)."""
    n = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    while True:
        fn()
        n += 1
        t = time.perf_counter()
        if t - t0 >= seconds:
            break
    return n, t - t0, time.process_time() - c0


def settle(max_seconds=1.0, window=0.005, busy=0.1):
    """Sleeps until this process uses under `busy` of a core over a `window` (its worker threads have stopped
    spinning), at most max_seconds: (wall seconds, process CPU seconds) spent waiting."""
    t0, c_start = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < max_seconds:
        c0 = time.process_time()
        time.sleep(window)
        if time.process_time() - c0 < busy * window:
            break
    return time.perf_counter() - t0, time.process_time() - c_start


def measure(fn, rounds, round_seconds, warmup_ms, warmup_calls, max_seconds, with_cpu=False):
    """Best and median seconds per call over `rounds` rounds (fewer once max_seconds is spent), after a warm-up;
    with_cpu: also the best of this process's CPU seconds per call (all its threads), which other jobs on a busy
    machine disturb less than the wall clock."""
    warm_end = time.perf_counter() + warmup_ms / 1000
    calls = 0
    while time.perf_counter() < warm_end or calls < warmup_calls:
        fn()
        calls += 1
    per_call = []
    cpu_best = float("inf")
    deadline = time.perf_counter() + max_seconds
    for r in range(rounds):
        if r > 0 and time.perf_counter() >= deadline:
            break
        n, wall, cpu = timed_round(fn, round_seconds)
        cpu_best = min(cpu_best, cpu / n)
        per_call.append(wall / n)
    per_call.sort()
    if with_cpu:
        return per_call[0], per_call[len(per_call) // 2], cpu_best
    return per_call[0], per_call[len(per_call) // 2]


def mlp_step(bn):
    torch.manual_seed(0)
    layers, width = [], 784
    for _ in range(3):
        lin = nn.Linear(width, 100, bias=not bn)
        nn.init.normal_(lin.weight, std=0.01)
        if lin.bias is not None:
            nn.init.zeros_(lin.bias)
        layers.append(lin)
        if bn:
            layers.append(nn.BatchNorm1d(100))  # eps 1e-5, momentum 0.1
        layers.append(nn.Sigmoid())
        width = 100
    head = nn.Linear(width, 10)
    nn.init.normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    model = nn.Sequential(*layers, head).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(60, 784)
    y = torch.tensor([(i * 7) % 10 for i in range(60)])

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    return step


def gemm_step(trans_a, trans_b, M, N, K):
    a = torch.rand(K, M) - 0.5 if trans_a else torch.rand(M, K) - 0.5
    b = torch.rand(N, K) - 0.5 if trans_b else torch.rand(K, N) - 0.5
    c = torch.empty(M, N)
    op_a = a.t() if trans_a else a
    op_b = b.t() if trans_b else b
    return lambda: torch.mm(op_a, op_b, out=c)


def bn_op_step(shape):
    C = shape[1]
    x = (torch.rand(*shape) - 0.5).requires_grad_()
    dy = torch.rand(*shape) - 0.5
    w = torch.ones(C, requires_grad=True)
    b = torch.zeros(C, requires_grad=True)

    def step():
        x.grad = w.grad = b.grad = None
        # No running statistics, as covshift's ops.batchNormTrain.
        y = F.batch_norm(x, None, None, w, b, training=True, eps=1e-5)
        y.backward(dy)

    return step


def bn_kernel_step(shape):
    C = shape[1]
    x = torch.rand(*shape) - 0.5
    dy = torch.rand(*shape) - 0.5
    w = torch.ones(C)
    b = torch.zeros(C)

    def step():
        with torch.no_grad():
            y, mean, invstd = torch.native_batch_norm(x, w, b, None, None, True, 0.1, 1e-5)
            torch.ops.aten.native_batch_norm_backward(dy, x, w, None, None, mean, invstd, True, 1e-5, [True, True, True])

    return step


def conv_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU()).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = (torch.rand(64, 32, 16, 16) - 0.5).requires_grad_()
    dy = torch.rand(64, 32, 16, 16) - 0.5

    def step():
        opt.zero_grad()
        x.grad = None
        model(x).backward(dy)
        opt.step()

    return step


# The steps the persistent driver runs, by the names bench/driver.ts uses.
SERVE_WORK = {"mlp-bn": lambda: mlp_step(True), "mlp": lambda: mlp_step(False), "conv": conv_step}


def serve(threads):
    """Answers the commands of bench/driver.ts, one JSON line each, until "quit" or the end of stdin."""
    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    steps = {}

    def answer(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def step_for(cmd):
        work = cmd.get("work")
        if work not in steps:
            raise ValueError(f"work {work!r} was not prepared; send {{\"op\": \"prepare\", \"work\": ...}} first")
        return steps[work]

    idle_wall, idle_cpu = time.perf_counter(), time.process_time()
    for line in sys.stdin:
        received_wall, received_cpu = time.perf_counter(), time.process_time()
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            op = cmd.get("op")
            if op == "hello":
                out = {"ok": True, "side": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(),
                       "defaultThreads": default_threads, "python": sys.executable, "pythonVersion": platform.python_version(),
                       "parallelInfo": torch.__config__.parallel_info(), "work": sorted(SERVE_WORK)}
            elif op == "prepare":
                work = cmd.get("work")
                if work not in SERVE_WORK:
                    raise ValueError(f"unknown work {work!r}; expected one of {', '.join(sorted(SERVE_WORK))}")
                fn = steps[work] = SERVE_WORK[work]()
                end = time.perf_counter() + float(cmd.get("warmupSeconds", 1))
                calls = 0
                while calls == 0 or time.perf_counter() < end:
                    fn()
                    calls += 1
                out = {"ok": True, "work": work, "warmupCalls": calls}
            elif op == "run":
                fn = step_for(cmd)
                for _ in range(int(cmd.get("warmupCalls", 1))):
                    fn()
                n, wall, cpu = timed_round(fn, float(cmd.get("seconds", 0.5)))
                settle_wall, settle_cpu = settle()
                out = {"ok": True, "work": cmd["work"], "steps": n, "wallSeconds": wall, "cpuSeconds": cpu,
                       "settleSeconds": settle_wall, "settleCpuSeconds": settle_cpu,
                       "idleWallSeconds": received_wall - idle_wall, "idleCpuSeconds": received_cpu - idle_cpu}
            elif op == "quit":
                answer({"ok": True})
                return
            else:
                raise ValueError(f"unknown op {op!r}; expected hello, prepare, run or quit")
        except Exception as e:  # noqa: BLE001 — every failure goes back to the caller as an answer
            out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        answer(out)
        idle_wall, idle_cpu = time.perf_counter(), time.process_time()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default="mlp,gemm,bn,conv")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--serve", action="store_true", help="answer commands on stdin at one thread count (see the docstring)")
    args = p.parse_args()
    if args.serve:
        threads = [int(t) for t in args.threads.split(",")]
        if len(threads) != 1:
            p.error(f"--serve runs at one thread count; got --threads {args.threads} (start one driver per count)")
        serve(threads[0])
        return
    effort = EFFORT["quick" if args.quick else "full"]
    only = set(args.only.split(","))
    threads = [int(t) for t in args.threads.split(",")]

    def log(s):
        print(f"  torch: {s}", file=sys.stderr, flush=True)

    out = {
        "torch": torch.__version__,
        "pythonVersion": platform.python_version(),
        "defaultThreads": torch.get_num_threads(),
        "parallelInfo": torch.__config__.parallel_info(),
        "mlp": [], "gemm": [], "bn": [], "conv": [], "notes": [],
    }
    for t in threads:
        torch.set_num_threads(t)
        actual = torch.get_num_threads()
        if actual != t:
            out["notes"].append(f"set_num_threads({t}) left {actual} threads")
        if "mlp" in only:
            for bn in (False, True):
                network = "batchnorm" if bn else "baseline"
                log(f"mlp {network}, {t} thread(s)")
                best, median, cpu = measure(mlp_step(bn), **effort["fast"], with_cpu=True)
                out["mlp"].append({"threads": t, "network": network, "stepsPerSecond": 1 / best,
                                   "medianStepsPerSecond": 1 / median, "msPerStep": best * 1e3, "cpuMsPerStep": cpu * 1e3})
        if "gemm" in only:
            for label, ta, tb, M, N, K in GEMM_CASES:
                log(f"gemm {label}, {t} thread(s)")
                best, median = measure(gemm_step(ta, tb, M, N, K), **effort["fast"])
                flops = 2 * M * N * K
                out["gemm"].append({"threads": t, "case": label, "M": M, "N": N, "K": K,
                                    "gflops": flops / best / 1e9, "medianGflops": flops / median / 1e9})
        if "bn" in only:
            for label, shape in BN_CASES:
                n = 1
                for d in shape:
                    n *= d
                nbytes = 5 * 4 * n  # x, y in forward; x, dy, dx in backward
                row = {"threads": t, "case": label, "bytesPerStep": nbytes}
                log(f"bn {label}, {t} thread(s)")
                best, _ = measure(bn_op_step(shape), **effort["fast"])
                row["opGBs"], row["opMsPerStep"] = nbytes / best / 1e9, best * 1e3
                try:
                    best, _ = measure(bn_kernel_step(shape), **effort["fast"])
                    row["kernelGBs"], row["kernelMsPerStep"] = nbytes / best / 1e9, best * 1e3
                except Exception as e:  # the aten signature differs in other versions
                    out["notes"].append(f"aten BN kernels not measured: {str(e).splitlines()[0]}")
                out["bn"].append(row)
        if "conv" in only:
            log(f"conv step, {t} thread(s)")
            best, median = measure(conv_step(), **effort["slow"])
            out["conv"].append({"threads": t, "msPerStep": best * 1e3, "medianMsPerStep": median * 1e3})
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
