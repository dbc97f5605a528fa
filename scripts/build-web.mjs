// Builds the browser demo (web/) into dist/web/ with esbuild: the page
// (main.js + main.css, uPlot bundled in), one worker bundle (the core,
// figure1's trainer and the wasm kernels, embedded), and index.html. The
// output is self-contained — nothing is fetched from the internet — and
// static: any host serves it, with the MNIST files in dist/web/mnist/.
import { build } from "esbuild";
import { copyFile, mkdir, readdir, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "web");

// Keep a mnist/ folder someone put into an earlier build; replace the rest.
await mkdir(out, { recursive: true });
for (const name of await readdir(out)) if (name !== "mnist") await rm(join(out, name), { recursive: true, force: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { main: "web/main.ts", worker: "web/worker.ts" },
  outdir: out,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022", "chrome105", "firefox110", "safari16"],
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  metafile: true,
  logLevel: "warning",
});
await copyFile(join(root, "web", "index.html"), join(out, "index.html"));

const sizes = [];
for (const file of Object.keys(result.metafile.outputs).filter((f) => !f.endsWith(".map"))) {
  sizes.push(`${file.replace(/^dist\/web\//, "")} ${((await stat(join(root, file))).size / 1024).toFixed(0)} KiB`);
}
console.log(`build-web: dist/web/index.html, ${sizes.join(", ")}`);
