#!/usr/bin/env node
// The command's own packages (option parser, progress bars, chart libraries)
// are optional dependencies of the covshift library: say which are missing
// and how to install them, instead of a module-not-found stack trace.
import { CLI_PACKAGES, missingPackagesMessage } from "../dist/src/io/optionalPackages.js";

const message = missingPackagesMessage(CLI_PACKAGES, "The covshift command");
if (message !== null) {
  process.stderr.write(`covshift: ${message}\n`);
  process.exit(1);
}
await import("../dist/src/cli/main.js");
