// Build step: protobufjs's light build (the encoder exportOnnx uses with ONNX's schema) bundled
// by esbuild into one ES module inside the core, so that dist/src runs unbundled in a browser
// (`import "covshift"` from a page) and library users install no protobuf package: protobufjs is
// CommonJS, which a browser cannot import by name.
//   node scripts/bundle-protobuf.mjs   → src/interop/onnx/generated/protobufLight.ts (not committed)
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const out = fileURLToPath(new URL("../src/interop/onnx/generated/protobufLight.ts", import.meta.url));
const result = await build({
  stdin: { contents: 'import protobuf from "protobufjs/light.js"; export default protobuf;', resolveDir: fileURLToPath(new URL("..", import.meta.url)) },
  bundle: true,
  format: "esm",
  platform: "neutral",
  mainFields: ["main"],
  minify: true,
  write: false,
  legalComments: "inline",
});
const code = result.outputFiles[0].text;
mkdirSync(fileURLToPath(new URL("../src/interop/onnx/generated/", import.meta.url)), { recursive: true });
writeFileSync(
  out,
  `// @ts-nocheck\n// protobufjs/light (BSD-3-Clause, Daniel Wirtz), bundled by scripts/bundle-protobuf.mjs — do not edit.\n${code}`,
);
console.log(`bundle-protobuf: ${code.length} bytes → src/interop/onnx/generated/protobufLight.ts`);
