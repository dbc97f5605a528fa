import { Command } from "commander";
import { spawn } from "node:child_process";
import { resolveDataDir } from "../data/datadir.js";
import { startDemoServer } from "../demo/server.js";
import { int } from "./parse.js";

/** Opens `url` in the system's browser; a failure only prints the address again. */
function openInBrowser(url: string): void {
  const [command, args] =
    process.platform === "darwin" ? ["open", [url]] : process.platform === "win32" ? ["cmd", ["/c", "start", "", url]] : ["xdg-open", [url]];
  const child = spawn(command, args, { detached: true, stdio: "ignore" });
  child.on("error", () => process.stdout.write(`covshift demo: could not open a browser (${command}); open ${url} yourself\n`));
  child.unref();
}

export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "Figure 1 live in the browser: serve a page on which the §4.1 network trains with and without BN side by side " +
        "(Web Workers, wasm kernels), with the paper's controls.",
    )
    .option("--port <n>", "port to listen on (0: a free one)", int("--port"), 8080)
    .option("--host <address>", "address to bind (the default keeps the demo on this machine)", "127.0.0.1")
    .option("--data <dir>", "MNIST directory (default: $COVSHIFT_DATA, else the per-user cache; missing files are downloaded)")
    .option("--no-download", "never download: the page says which MNIST files are missing")
    .option("--open", "open the page in the system's browser", false)
    .addHelpText("after", `\nCtrl-C stops the server.\nExample: covshift demo --data ../shared/data/mnist --open`)
    .action(async (o) => {
      if (!(o.port >= 0 && o.port <= 65535)) throw new Error(`demo: --port must be in 0–65535; got ${o.port}`);
      const dataDir = resolveDataDir("mnist", o.data);
      const server = await startDemoServer({ dataDir, port: o.port, host: o.host, download: o.download });
      if (server.dataError !== null) {
        process.stderr.write(`covshift demo: MNIST cannot be loaded, so the page cannot train; it shows this message too:\n${server.dataError}\n`);
      }
      process.stdout.write(`covshift demo: serving ${server.url} (MNIST from ${dataDir}); Ctrl-C stops\n`);
      if (o.open) openInBrowser(server.url);
      await new Promise<void>((done) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          void server.close().then(() => {
            process.stdout.write("covshift demo: stopped\n");
            done();
          });
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
    });
}
