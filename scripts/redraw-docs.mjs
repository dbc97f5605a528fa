// Redraws the README's pictures from the runs stored beside them — docs/figure1.json (a
// `covshift figure1` run) and docs/table.json (a `covshift table` run) — with the current chart
// code, exactly as the commands draw them at the end of a run: docs/figure1.png/.svg and
// docs/figure2.png/.svg. Needs a build (npm run build). No training; a few seconds.
//   node scripts/redraw-docs.mjs
import { mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFigure1Plots } from "../dist/src/report/figure1Plots.js";
import { writeFigure2Plot } from "../dist/src/report/tablePlots.js";

const docs = fileURLToPath(new URL("../docs/", import.meta.url));
const out = mkdtempSync(join(tmpdir(), "covshift-docs-"));
try {
  await writeFigure1Plots(JSON.parse(readFileSync(join(docs, "figure1.json"), "utf8")), out);
  await writeFigure2Plot(JSON.parse(readFileSync(join(docs, "table.json"), "utf8")), out);
  for (const name of ["figure1.png", "figure1.svg", "figure2.png", "figure2.svg"]) {
    renameSync(join(out, name), join(docs, name));
    console.log(`redraw-docs: docs/${name}`);
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
