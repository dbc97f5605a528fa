/**
 * A user's app bundled by esbuild against the packed package, served and
 * opened in Chromium: what bundle.test.ts and dataParallel.test.ts share.
 * The server serves the bundle's output folder only (nothing of the
 * repository is reachable), each page as a small HTML file loading one
 * bundle; a page reports by setting window.__result.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve, sep } from "node:path";
import { build } from "esbuild";
import type { Browser } from "playwright-core";

/** The headers that make a page cross-origin isolated (SharedArrayBuffer). */
export const ISOLATION_HEADERS = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };

/** Bundle `entryPoints` (paths in `dir`) as ES modules for browsers into dir/out; returns the files written, sorted. */
export async function bundleApp(dir: string, entryPoints: string[]): Promise<string[]> {
  // esbuild resolves "covshift/…" through the installed package's exports.
  await build({
    absWorkingDir: dir,
    entryPoints,
    outdir: join(dir, "out"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    logLevel: "error",
  });
  return readdirSync(join(dir, "out")).sort();
}

export interface AppServer {
  server: Server;
  origin: string;
  /** Every path requested so far, in order. */
  requested: string[];
}

/**
 * Serve `pages` (name → the script it loads) and the files of dir/out on
 * 127.0.0.1, with the headers `headersFor(path)` adds to each response.
 * `mounts` (a URL path prefix → a folder) serve a folder's files as they
 * are — unbundled modules — before anything else.
 */
export async function serveApp(
  dir: string,
  pages: Record<string, string>,
  headersFor: (path: string) => Record<string, string>,
  mounts: Record<string, string> = {},
): Promise<AppServer> {
  const outputs = readdirSync(join(dir, "out"));
  const requested: string[] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    requested.push(path);
    const name = path.slice(path.lastIndexOf("/") + 1) || "index.html";
    const headers = { "Cache-Control": "no-store", ...headersFor(path) };
    const mount = Object.keys(mounts).find((prefix) => path.startsWith(prefix));
    const file = mount === undefined ? null : resolve(mounts[mount], `.${path.slice(mount.length - 1)}`);
    if (file !== null && file.startsWith(resolve(mounts[mount!]) + sep) && existsSync(file) && statSync(file).isFile()) {
      res.writeHead(200, { ...headers, "Content-Type": file.endsWith(".js") ? "text/javascript" : "application/octet-stream" }).end(readFileSync(file));
    } else if (name in pages) {
      const page = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>app</title><script type="module" src="${pages[name]}"></script>`;
      res.writeHead(200, { ...headers, "Content-Type": "text/html" }).end(page);
    } else if (outputs.includes(name)) {
      res.writeHead(200, { ...headers, "Content-Type": "text/javascript" }).end(readFileSync(join(dir, "out", name)));
    } else {
      res.writeHead(404, headers).end("not found");
    }
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requested };
}

export async function closeServer(server: Server | null): Promise<void> {
  if (server === null) return;
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
}

/**
 * Open `url`, wait for window.__result and return it with what went wrong
 * on the way (console errors and warnings, page errors, failed requests)
 * and the page's console.log lines.
 */
export async function pageResult<T>(browser: Browser, url: string, timeout: number): Promise<{ result: T; log: string[]; console: string[] }> {
  const page = await browser.newPage();
  const log: string[] = [];
  const lines: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") log.push(`console.${m.type()}: ${m.text()}`);
    else if (m.type() === "log") lines.push(m.text());
  });
  page.on("pageerror", (e) => log.push(`page error: ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400) log.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  try {
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { __result?: unknown }).__result !== undefined, null, { timeout });
    const result = (await page.evaluate(() => (window as unknown as { __result: unknown }).__result)) as T;
    return { result, log, console: lines };
  } finally {
    await page.close();
  }
}
