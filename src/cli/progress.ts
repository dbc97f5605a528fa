import cliProgress from "cli-progress";

/** One row of the display: a run being trained. */
export interface ProgressRow {
  name: string;
  total: number;
}

export interface ProgressUpdate {
  step: number;
  accuracy?: number;
  loss?: number;
  note?: string;
}

/**
 * Progress of several concurrent runs. On a terminal: one live bar per run
 * with step, steps/s, time left and the latest accuracy. Otherwise (a file, a
 * pipe, CI): plain lines, one per evaluation, so logs stay readable.
 */
export class ProgressDisplay {
  private readonly tty: boolean;
  private readonly multibar: cliProgress.MultiBar | null;
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  private readonly rates = new Map<string, { t: number; step: number; rate: number }>();
  private readonly accuracy = new Map<string, string>();

  /**
   * @param accuracyLabel what the accuracy column measures, e.g. "test accuracy"
   */
  constructor(
    private readonly accuracyLabel = "test accuracy",
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY) && process.env.CI === undefined;
    this.multibar = this.tty
      ? new cliProgress.MultiBar(
          {
            stream,
            format: " {name} {bar} {value}/{total} · {rate} steps/s · {eta_formatted} left · acc {acc}",
            barsize: 24,
            hideCursor: true,
            clearOnComplete: false,
            etaBuffer: 50,
            fps: 5,
          },
          cliProgress.Presets.shades_classic,
        )
      : null;
  }

  add(row: ProgressRow, startStep = 0): void {
    this.rates.set(row.name, { t: performance.now(), step: startStep, rate: 0 });
    this.accuracy.set(row.name, "—");
    if (this.multibar) {
      this.bars.set(row.name, this.multibar.create(row.total, startStep, { name: row.name.padEnd(17), rate: "—", acc: "—" }));
    } else {
      this.stream.write(`${row.name}: starting at step ${startStep} of ${row.total}\n`);
    }
  }

  update(name: string, u: ProgressUpdate): void {
    const r = this.rates.get(name);
    if (r === undefined) return;
    const now = performance.now();
    if (now - r.t > 1000) {
      const instant = ((u.step - r.step) * 1000) / (now - r.t);
      r.rate = r.rate === 0 ? instant : 0.7 * r.rate + 0.3 * instant;
      r.t = now;
      r.step = u.step;
    }
    if (u.accuracy !== undefined) this.accuracy.set(name, `${(100 * u.accuracy).toFixed(2)}%`);
    const rate = r.rate <= 0 ? "—" : r.rate < 10 ? r.rate.toFixed(1) : r.rate.toFixed(0);
    const bar = this.bars.get(name);
    if (bar) {
      bar.update(u.step, { rate, acc: this.accuracy.get(name) });
    } else if (u.accuracy !== undefined || u.note !== undefined) {
      const parts = [`${name}: step ${u.step}`];
      if (u.accuracy !== undefined) parts.push(`${this.accuracyLabel} ${this.accuracy.get(name)}`);
      if (u.loss !== undefined) parts.push(`train loss ${u.loss.toFixed(4)}`);
      if (r.rate > 0) parts.push(`${rate} steps/s`);
      if (u.note) parts.push(u.note);
      this.stream.write(parts.join(" · ") + "\n");
    }
  }

  /** A message above the bars (or a plain line). */
  log(message: string): void {
    if (this.multibar) this.multibar.log(message + "\n");
    else this.stream.write(message + "\n");
  }

  stop(): void {
    this.multibar?.stop();
  }
}
