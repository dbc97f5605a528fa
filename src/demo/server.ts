/**
 * The local server of `covshift demo`: serves the built page (dist/web/)
 * and the MNIST files of the data directory under /mnist/, every response
 * with the COOP/COEP headers that make the page cross-origin isolated (so it
 * gets SharedArrayBuffer: one copy of the data shared by both training
 * workers, and zero-copy wasm storage).
 *
 * The data directory is checked at start with figure1's loader (loadMnist:
 * the same directory rules, downloads checked against their md5, every file
 * parsed and validated). When that fails, the server still serves the page,
 * and answers /mnist/ requests with the loader's message, which the page
 * shows as it is.
 */
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { findMnistFile, loadMnist } from "../data/mnist.js";
import { MNIST_FILES, mnistGzName } from "../data/mnistFormat.js";

/** Where `npm run build` puts the page: dist/web, next to dist/src. */
export const BUILT_PAGE_DIR = fileURLToPath(new URL("../../web/", import.meta.url));

export interface DemoServerOptions {
  /** MNIST directory (already resolved by the data-directory rules). */
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  /** Address to bind; 127.0.0.1 keeps the demo on this machine. */
  host: string;
  /** Fetch missing MNIST files from the public mirrors (as figure1 does by default). */
  download?: boolean;
  /** The built page; BUILT_PAGE_DIR by default. */
  pageDir?: string;
}

export interface DemoServer {
  /** e.g. http://127.0.0.1:8080/ */
  url: string;
  /** Why the page cannot train (MNIST missing or damaged), or null when the data is fine. */
  dataError: string | null;
  close(): Promise<void>;
}

/** Sent with every response: cross-origin isolation (COOP + COEP), and resources only for this origin. */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
  "X-Content-Type-Options": "nosniff",
};

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".png": "image/png",
};

/** Check the data, then listen. Rejects when the page is not built or the port cannot be had. */
export async function startDemoServer(options: DemoServerOptions): Promise<DemoServer> {
  const pageDir = resolve(options.pageDir ?? BUILT_PAGE_DIR);
  if (!existsSync(join(pageDir, "index.html"))) {
    throw new Error(`demo: the page is not built (no ${join(pageDir, "index.html")}); run \`npm run build\` (or \`npm run build:web\`) in the covshift folder first`);
  }

  let dataError: string | null = null;
  const files = new Map<string, string>();
  try {
    await Promise.all([
      loadMnist(options.dataDir, "train", { download: options.download }),
      loadMnist(options.dataDir, "test", { download: options.download }),
    ]);
    for (const split of Object.values(MNIST_FILES)) {
      for (const file of [split.images, split.labels]) files.set(mnistGzName(file), findMnistFile(options.dataDir, file)!);
    }
  } catch (err) {
    dataError = (err as Error).message;
  }

  const server = createServer((req, res) => handle(req, res, pageDir, files, dataError));
  await new Promise<void>((done, fail) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") fail(new Error(`demo: port ${options.port} on ${options.host} is in use; choose another with --port N (--port 0 picks a free one)`));
      else if (err.code === "EADDRNOTAVAIL" || err.code === "ENOTFOUND") fail(new Error(`demo: cannot listen on ${options.host}: it is not an address of this machine (--host)`));
      else fail(new Error(`demo: cannot listen on ${options.host}:${options.port}: ${err.message}`));
    });
    server.listen(options.port, options.host, () => done());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  return { url: `http://${host}:${port}/`, dataError, close: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((done) => {
    server.close(() => done());
    server.closeAllConnections();
  });
}

function handle(req: IncomingMessage, res: ServerResponse, pageDir: string, files: Map<string, string>, dataError: string | null): void {
  const headers: Record<string, string> = { ...ISOLATION_HEADERS, "Cache-Control": "no-cache" };
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { ...headers, Allow: "GET, HEAD" }).end();
    return;
  }
  let path: string;
  try {
    path = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
  } catch {
    res.writeHead(400, headers).end("bad request");
    return;
  }
  const data = /^\/mnist\/([^/]+)$/.exec(path);
  if (data !== null) {
    if (dataError !== null) {
      res.writeHead(503, { ...headers, "Content-Type": MIME[".txt"], "X-Covshift-Data-Error": "1" }).end(dataError);
      return;
    }
    const file = files.get(data[1]);
    if (file === undefined) {
      res.writeHead(404, { ...headers, "Content-Type": MIME[".txt"] }).end(`not an MNIST file: ${data[1]}`);
      return;
    }
    // Gzipped or not, as it is on disk: the page tells them apart by content.
    sendFile(req, res, file, { ...headers, "Content-Type": "application/octet-stream" });
    return;
  }
  // The page's own files: flat in pageDir, so any name with a slash or dot-dot is refused.
  const name = path === "/" ? "index.html" : path.slice(1);
  if (!/^[\w.-]+$/.test(name) || name.startsWith(".")) {
    res.writeHead(404, { ...headers, "Content-Type": MIME[".txt"] }).end("not found");
    return;
  }
  const file = join(pageDir, name);
  if (!existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404, { ...headers, "Content-Type": MIME[".txt"] }).end("not found");
    return;
  }
  sendFile(req, res, file, { ...headers, "Content-Type": MIME[extname(name)] ?? "application/octet-stream" });
}

function sendFile(req: IncomingMessage, res: ServerResponse, file: string, headers: Record<string, string>): void {
  res.writeHead(200, { ...headers, "Content-Length": String(statSync(file).size) });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  createReadStream(file)
    .on("error", () => res.destroy())
    .pipe(res);
}
