/**
 * What `import "covshift"` loads in Node (the package's "node" export
 * condition; browsers and bundlers for them get src/index.ts): the library's
 * entry, which selects the fast kernels, and then the kernels' threads —
 * the large kernels shared with one worker thread per further core, started
 * in the background (see startDefaultWasmThreads; COVSHIFT_THREADS=n sets
 * the count). The API is src/index.ts's.
 */
import { getBackend } from "../index.js";
import { startDefaultWasmThreads } from "./wasmThreads.js";

export * from "../index.js";

startDefaultWasmThreads(getBackend());
