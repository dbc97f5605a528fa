import { Command } from "commander";
import { createRequire } from "node:module";
import { demoCommand } from "./demoCommand.js";
import { figure1Command } from "./figure1Command.js";
import { tableCommand } from "./tableCommand.js";
import { exportCommand } from "./exportCommand.js";
import { jacobianCommand } from "./jacobianCommand.js";
import { adabnCommand } from "./adabnCommand.js";
import { batchsizeCommand } from "./batchsizeCommand.js";

const { version } = createRequire(import.meta.url)("../../../package.json") as { version: string };

const program = new Command("covshift")
  .description("Batch Normalization (Ioffe & Szegedy, 2015) in TypeScript: reproductions of the paper's experiments.")
  .version(version)
  .addCommand(figure1Command())
  .addCommand(tableCommand())
  .addCommand(jacobianCommand())
  .addCommand(demoCommand())
  .addCommand(exportCommand())
  .addCommand(adabnCommand())
  .addCommand(batchsizeCommand())
  .showHelpAfterError();

program.parseAsync(process.argv).catch((err: Error) => {
  // Errors are for people: the message says what was expected and what to do; no stack trace.
  process.stderr.write(`covshift: ${err.message}\n`);
  process.exit(1);
});
