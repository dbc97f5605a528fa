/**
 * The demo page: loads MNIST, starts one training worker per network, draws
 * Figure 1 and the BN panel as evaluations arrive, and exposes
 * `window.covshiftDemo` for automation:
 *
 *   state()          → { step, running, backend, runs: { baseline: { steps, testAccuracy, p15, p50, p85 }, batchnorm: {…} }, … }
 *   start(options?)  → trains (options: settings to restart with, and/or stepsPerSecond)
 *   pause(), reset()
 *
 * The root element gets data-ready="true" once the data and both workers are loaded.
 */
import "./style.css";
import { accuracyChart, accuracyDomain, histogramChart, percentileChart, sharedDomain, sharedHistogram, type LiveChart } from "./charts.js";
import { DataError, loadMnistInBrowser } from "./data.js";
import { DEFAULT_SETTINGS, NETWORKS, type DemoSettings, type Evaluation, type FromWorker, type NetworkKind, type ToWorker } from "./protocol.js";

interface RunSeries {
  steps: number[];
  testAccuracy: number[];
  p15: number[];
  p50: number[];
  p85: number[];
}

interface RunState extends RunSeries {
  /** Steps trained so far (evaluations come every settings.evalEvery). */
  step: number;
  running: boolean;
  diverged: { step: number; message: string } | null;
  latest: Evaluation | null;
}

export interface StartOptions extends Partial<DemoSettings> {
  /** null or "max": as fast as possible. */
  stepsPerSecond?: number | null | "max";
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const root = $("demo");
const statusLine = $("status");
const runButton = $<HTMLButtonElement>("run");
const resetButton = $<HTMLButtonElement>("reset");
const applyButton = $<HTMLButtonElement>("apply");
const populationButton = $<HTMLButtonElement>("population");
const exportButton = $<HTMLButtonElement>("export");
const speedSelect = $<HTMLSelectElement>("speed");
const histogramLayer = $<HTMLSelectElement>("histogram-layer");

const emptyRun = (): RunState => ({ steps: [], testAccuracy: [], p15: [], p50: [], p85: [], step: 0, running: false, diverged: null, latest: null });
const runs: Record<NetworkKind, RunState> = { baseline: emptyRun(), batchnorm: emptyRun() };
const workers = new Map<NetworkKind, Worker>();
let settings: DemoSettings = { ...DEFAULT_SETTINGS };
let backend = "";
let ready = false;
let failure: string | null = null;
/** Whether the user (or start()) asked to train; the workers' own flags say whether they are. */
let wantRunning = false;

// ---- charts -------------------------------------------------------------

let percentileRange: [number, number] = [-1, 1];
const charts: { accuracy: LiveChart; baseline: LiveChart; batchnorm: LiveChart; histogram: LiveChart } = {
  accuracy: accuracyChart($("chart-accuracy"), () => accuracyDomain(NETWORKS.map((n) => runs[n].testAccuracy.at(-1)))),
  baseline: percentileChart($("chart-baseline"), "(b) Without BN", () => percentileRange),
  batchnorm: percentileChart($("chart-batchnorm"), "(c) With BN", () => percentileRange),
  histogram: histogramChart($("chart-histogram"), "Input of the nonlinearity"),
};

/** One range for (b) and (c), as the CLI's plots draw it. */
function updatePercentileRange(): void {
  percentileRange = sharedDomain(NETWORKS.flatMap((n) => [...runs[n].p15, ...runs[n].p50, ...runs[n].p85])) ?? percentileRange;
}

let drawPending = false;
/** Redraw at most once per animation frame, however fast evaluations arrive. */
function scheduleDraw(): void {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    draw();
  });
}

function draw(): void {
  const base = runs.baseline;
  const bn = runs.batchnorm;
  // uPlot wants one x array: the union of both runs' evaluation steps, gaps where one has not got there yet.
  const steps = [...new Set([...base.steps, ...bn.steps])].sort((a, b) => a - b);
  const pick = (r: RunState, key: keyof RunSeries) => {
    const at = new Map(r.steps.map((s, i) => [s, r[key][i]]));
    return steps.map((s) => at.get(s) ?? null);
  };
  charts.accuracy.update([steps, pick(base, "testAccuracy"), pick(bn, "testAccuracy")]);
  updatePercentileRange();
  charts.baseline.update([base.steps, base.p85, base.p50, base.p15]);
  charts.batchnorm.update([bn.steps, bn.p85, bn.p50, bn.p15]);
  const layer = Number(histogramLayer.value);
  charts.histogram.update(sharedHistogram([base.latest?.preActivations[layer] ?? null, bn.latest?.preActivations[layer] ?? null], 40));
  drawBnTable();
  drawSummary();
}

const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "—" : `${(100 * v).toFixed(1)}%`);
const num = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : String(v));

function drawSummary(): void {
  const parts = NETWORKS.map((n) => {
    const r = runs[n];
    const name = n === "baseline" ? "without BN" : "with BN";
    const where = r.steps.length > 0 ? `${pct(r.testAccuracy.at(-1))} at step ${r.steps.at(-1)!.toLocaleString("en-US")}` : "not evaluated yet";
    return `${name}: ${where}${r.diverged ? ` (diverged at step ${r.diverged.step.toLocaleString("en-US")})` : ""}`;
  });
  $("summary").textContent = `Test accuracy — ${parts.join("; ")}.`;
  $("chart-accuracy").setAttribute("aria-label", `Test accuracy: ${parts.join("; ")}`);
}

function drawBnTable(): void {
  const body = document.querySelector("#bn-table tbody")!;
  const layers = runs.batchnorm.latest?.bn ?? [];
  const rows: string[] = [];
  for (const l of layers) {
    for (let u = 0; u < Math.min(4, l.runningMean.length); u++) {
      rows.push(
        `<tr><td>${l.layer}</td><td>${u}</td><td>${num(l.runningMean[u])}</td><td>${num(l.runningVar[u])}</td><td>${num(l.gamma[u])}</td><td>${num(l.beta[u])}</td></tr>`,
      );
    }
  }
  body.innerHTML = rows.join("");
}

// ---- status and controls -----------------------------------------------

const step = () => Math.min(runs.baseline.step, runs.batchnorm.step);
const anyRunning = () => NETWORKS.some((n) => runs[n].running);

function showStatus(): void {
  if (failure !== null) return;
  if (!ready) return;
  const done = NETWORKS.every((n) => runs[n].step >= settings.steps || runs[n].diverged !== null);
  const what = anyRunning() ? "Training" : done ? "Finished" : step() === 0 ? "Ready" : "Paused";
  statusLine.textContent = `${what} — step ${step().toLocaleString("en-US")} of ${settings.steps.toLocaleString("en-US")}.`;
  runButton.textContent = wantRunning ? "Pause" : step() === 0 ? "Start" : "Resume";
  // Finished (or diverged) runs resume only after Reset or a later stop step (Apply).
  runButton.disabled = !wantRunning && done;
  runButton.setAttribute("aria-pressed", String(wantRunning));
}

function send(network: NetworkKind, message: ToWorker): void {
  workers.get(network)!.postMessage(message);
}

function stepsPerSecond(choice: string | number | null | undefined): number | null {
  if (choice === null || choice === undefined || choice === "max") return null;
  const n = Number(choice);
  if (!(n > 0)) throw new Error(`covshiftDemo: stepsPerSecond must be a positive number, null or "max"; got ${String(choice)}`);
  return n;
}

function readForm(): DemoSettings {
  const value = (id: string) => ($(id) as HTMLInputElement | HTMLSelectElement).value;
  return {
    ...settings,
    lr: Number(value("lr")),
    lrMultiplier: Number(value("lr-multiplier")),
    initStd: Number(value("init-std")),
    batchSize: Number(value("batch-size")),
    bnMomentum: Number(value("bn-momentum")),
    activation: value("activation") === "relu" ? "relu" : "sigmoid",
    steps: Number(value("steps")),
  };
}

function writeForm(s: DemoSettings): void {
  const set = (id: string, v: string | number) => (($(id) as HTMLInputElement | HTMLSelectElement).value = String(v));
  set("lr", s.lr);
  set("lr-multiplier", s.lrMultiplier);
  set("init-std", s.initStd);
  set("batch-size", s.batchSize);
  set("bn-momentum", s.bnMomentum);
  set("activation", s.activation);
  set("steps", s.steps);
}

/** Settings that cannot train are refused with a message that says which and why. */
function validate(s: DemoSettings): void {
  const problems: string[] = [];
  if (!(s.lr > 0 && Number.isFinite(s.lr))) problems.push(`learning rate must be a positive number (got ${s.lr})`);
  if (![1, 5, 30].includes(s.lrMultiplier)) problems.push(`learning-rate multiplier must be 1, 5 or 30 (got ${s.lrMultiplier})`);
  if (!(s.initStd > 0)) problems.push(`initial weight scale must be positive (got ${s.initStd})`);
  if (!(Number.isInteger(s.batchSize) && s.batchSize >= 2 && s.batchSize <= 1000)) problems.push(`batch size must be a whole number from 2 to 1,000 (got ${s.batchSize}); BN needs two values per unit`);
  if (!(s.bnMomentum > 0 && s.bnMomentum <= 1)) problems.push(`BN momentum must be in (0, 1] (got ${s.bnMomentum})`);
  if (s.activation !== "sigmoid" && s.activation !== "relu") problems.push(`nonlinearity must be "sigmoid" or "relu" (got ${String(s.activation)})`);
  if (!(Number.isInteger(s.steps) && s.steps >= 1)) problems.push(`the step to stop at must be a whole number ≥ 1 (got ${s.steps})`);
  if (!(Number.isInteger(s.evalEvery) && s.evalEvery >= 1)) problems.push(`evalEvery must be a whole number ≥ 1 (got ${s.evalEvery})`);
  if (!(Number.isInteger(s.seed) && s.seed >= 0)) problems.push(`seed must be a whole number ≥ 0 (got ${s.seed})`);
  if (problems.length > 0) throw new Error(`covshiftDemo: ${problems.join("; ")}`);
}

function requireReady(what: string): void {
  if (!ready) throw new Error(`covshiftDemo.${what}(): the page is not ready yet (${failure ?? "data and workers are loading"}); wait for data-ready="true" on #demo`);
}

function reset(next: DemoSettings = settings): void {
  requireReady("reset");
  validate(next);
  settings = next;
  writeForm(settings);
  wantRunning = false;
  for (const n of NETWORKS) {
    Object.assign(runs[n], emptyRun());
    send(n, { type: "reset", settings });
  }
  $("population-result").textContent = "";
  scheduleDraw();
  showStatus();
}

/** New settings: a new stop step moves the stop; any other change restarts both networks from step 0 with the settings. */
function apply(next: DemoSettings): void {
  validate(next);
  const restart = (Object.keys(next) as (keyof DemoSettings)[]).some((k) => k !== "steps" && next[k] !== settings[k]);
  if (restart) {
    reset(next);
    return;
  }
  if (next.steps !== settings.steps) {
    settings = next;
    for (const n of NETWORKS) send(n, { type: "stopAt", steps: next.steps });
    showStatus();
  }
}

function start(options: StartOptions = {}): void {
  requireReady("start");
  const { stepsPerSecond: pace, ...changes } = options;
  if (pace !== undefined) speedSelect.value = pace === null || pace === "max" ? "max" : String(pace);
  apply({ ...settings, ...changes });
  wantRunning = true;
  const rate = stepsPerSecond(pace === undefined ? speedSelect.value : pace);
  for (const n of NETWORKS) if (runs[n].diverged === null) send(n, { type: "run", stepsPerSecond: rate });
  showStatus();
}

function pause(): void {
  requireReady("pause");
  wantRunning = false;
  for (const n of NETWORKS) send(n, { type: "pause" });
  showStatus();
}

function state() {
  const series = (r: RunState) => ({
    steps: [...r.steps],
    testAccuracy: [...r.testAccuracy],
    p15: [...r.p15],
    p50: [...r.p50],
    p85: [...r.p85],
    step: r.step,
    diverged: r.diverged,
  });
  return {
    step: step(),
    running: anyRunning(),
    backend,
    ready,
    error: failure,
    crossOriginIsolated: self.crossOriginIsolated === true,
    settings: { ...settings },
    runs: { baseline: series(runs.baseline), batchnorm: series(runs.batchnorm) },
  };
}

// ---- workers ------------------------------------------------------------

function onMessage(m: FromWorker): void {
  const r = runs[m.network];
  switch (m.type) {
    case "ready":
      backend = m.backend;
      break;
    case "progress":
      r.step = m.step;
      r.running = m.running;
      if (!anyRunning() && NETWORKS.every((n) => runs[n].step >= settings.steps || runs[n].diverged !== null)) wantRunning = false;
      showStatus();
      return;
    case "eval": {
      const e = m.evaluation;
      r.steps.push(e.step);
      r.testAccuracy.push(e.accuracy);
      r.p15.push(e.p15);
      r.p50.push(e.p50);
      r.p85.push(e.p85);
      r.latest = e;
      scheduleDraw();
      return;
    }
    case "diverged":
      r.diverged = { step: m.step, message: m.message };
      statusLine.textContent = `The network ${m.network === "baseline" ? "without" : "with"} BN diverged at step ${m.step.toLocaleString("en-US")} (a non-finite gradient); the other one goes on.`;
      scheduleDraw();
      return;
    case "population": {
      const change = m.populationAccuracy - m.runningAccuracy;
      $("population-result").textContent =
        `At step ${m.step.toLocaleString("en-US")}: ${pct(m.runningAccuracy)} with the running averages → ${pct(m.populationAccuracy)} with population statistics ` +
        `(${change >= 0 ? "+" : "−"}${Math.abs(100 * change).toFixed(2)} points; computed on a copy, training is unchanged).`;
      populationButton.disabled = false;
      return;
    }
    case "export":
      offerDownloads(m);
      return;
    case "error":
      fail(`The ${m.network === "baseline" ? "baseline" : "BN"} network's worker failed: ${m.message}`);
      return;
  }
}

// ---- downloads ----------------------------------------------------------

type ExportedFiles = Extract<FromWorker, { type: "export" }>;
/** Files made by the latest "Prepare downloads", per network, until both have arrived. */
let pendingExports: Partial<Record<NetworkKind, ExportedFiles>> = {};
let downloadUrls: string[] = [];

function prepareDownloads(): void {
  exportButton.disabled = true;
  pendingExports = {};
  $("export-status").textContent = "Writing both networks as safetensors and ONNX…";
  for (const n of NETWORKS) send(n, { type: "export" });
}

/** Once both networks' files are in, one link per file (an object URL; the old ones are released). */
function offerDownloads(files: ExportedFiles): void {
  pendingExports[files.network] = files;
  if (!NETWORKS.every((n) => pendingExports[n] !== undefined)) return;
  for (const url of downloadUrls) URL.revokeObjectURL(url);
  downloadUrls = [];
  const list = $("downloads");
  list.replaceChildren();
  for (const n of NETWORKS) {
    const f = pendingExports[n]!;
    for (const [format, bytes, type] of [
      ["safetensors", f.safetensors, "application/octet-stream"],
      ["onnx", f.onnx, "application/octet-stream"],
    ] as const) {
      // Blob wants an ArrayBuffer-backed view; the worker transferred a plain ArrayBuffer.
      const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
      downloadUrls.push(url);
      const link = document.createElement("a");
      link.href = url;
      link.download = `covshift-demo-${n}-step${f.step}.${format}`;
      link.textContent = link.download;
      link.dataset.network = n;
      link.dataset.format = format;
      const item = document.createElement("li");
      item.append(link, ` (${n === "batchnorm" ? "with" : "without"} BN, step ${f.step.toLocaleString("en-US")}, ${(bytes.byteLength / 1024).toFixed(0)} KiB)`);
      list.append(item);
    }
  }
  $("export-status").textContent = "Ready: the links below save the files.";
  exportButton.disabled = false;
}

function fail(message: string): void {
  failure = message;
  const box = $("data-error");
  box.textContent = message;
  box.hidden = false;
  statusLine.textContent = "The demo cannot run — see the message below.";
  root.setAttribute("aria-busy", "false");
}

function startWorker(network: NetworkKind, data: Awaited<ReturnType<typeof loadMnistInBrowser>>): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: `covshift-${network}` });
    workers.set(network, worker);
    worker.addEventListener("error", (event) => reject(new Error(`the ${network} worker did not start: ${event.message || "its script did not load"}`)));
    worker.addEventListener("message", (event: MessageEvent<FromWorker>) => {
      if (event.data.type === "ready") resolve();
      if (event.data.type === "error" && !ready) reject(new Error(event.data.message));
      onMessage(event.data);
    });
    worker.postMessage({ type: "init", network, settings, train: data.train, test: data.test } satisfies ToWorker);
  });
}

async function boot(): Promise<void> {
  const progress = $<HTMLProgressElement>("load-progress");
  statusLine.textContent = "Loading MNIST (11 MB)…";
  let data: Awaited<ReturnType<typeof loadMnistInBrowser>>;
  try {
    data = await loadMnistInBrowser((f) => (progress.value = f));
  } catch (err) {
    progress.hidden = true;
    fail(err instanceof DataError ? err.message : `Loading MNIST failed: ${(err as Error).message}`);
    return;
  }
  progress.hidden = true;
  statusLine.textContent = "Starting the two training workers…";
  try {
    await Promise.all(NETWORKS.map((n) => startWorker(n, data)));
  } catch (err) {
    fail((err as Error).message);
    return;
  }
  ready = true;
  $("backend").textContent = `Backend: ${backend}${self.crossOriginIsolated ? "" : " — serve the page cross-origin isolated (covshift demo does) for shared memory"}.`;
  for (const b of [runButton, resetButton, applyButton, populationButton, exportButton]) b.disabled = false;
  root.setAttribute("aria-busy", "false");
  root.dataset.ready = "true";
  showStatus();
}

runButton.addEventListener("click", () => (wantRunning ? pause() : start()));
resetButton.addEventListener("click", () => reset());
speedSelect.addEventListener("change", () => {
  if (!ready) return;
  const rate = stepsPerSecond(speedSelect.value);
  for (const n of NETWORKS) send(n, { type: "speed", stepsPerSecond: rate });
});
histogramLayer.addEventListener("change", scheduleDraw);
$<HTMLFormElement>("settings").addEventListener("submit", (event) => {
  event.preventDefault();
  try {
    apply(readForm());
  } catch (err) {
    statusLine.textContent = (err as Error).message.replace(/^covshiftDemo: /, "Cannot apply: ");
  }
});
populationButton.addEventListener("click", () => {
  populationButton.disabled = true;
  $("population-result").textContent = "Recomputing the BN layers' statistics over one pass of the training set…";
  send("batchnorm", { type: "population" });
});

exportButton.addEventListener("click", prepareDownloads);

(window as unknown as { covshiftDemo: unknown }).covshiftDemo = { state, start, pause, reset: () => reset() };
writeForm(settings);
void boot();
