import { Command, Option } from "commander";
import { resolve } from "node:path";
import { loadTrainedNetwork, writeExport } from "../experiments/exportModel.js";

export function exportCommand(): Command {
  return new Command("export")
    .description(
      "Convert a network trained by figure1 or table — a model file (<out>/models/<name>.safetensors) or a checkpoint of an unfinished run (<out>/checkpoints/<name>.safetensors) — to ONNX (for ONNX Runtime) or safetensors (for PyTorch).",
    )
    .argument("<checkpoint>", "model file or checkpoint (.safetensors)")
    .addOption(new Option("--format <format>", "what to write").choices(["onnx", "safetensors"]).makeOptionMandatory())
    .option("--fold-bn", "fold each BN into the Linear/Conv2d before it (Algorithm 2, step 11) before writing", false)
    .option("--output <file>", "where to write (default: beside the input, with the format's extension)")
    .action((checkpoint: string, opts: { format: "onnx" | "safetensors"; foldBn: boolean; output?: string }) => {
      const input = resolve(checkpoint);
      const base = input.replace(/\.safetensors$/, "");
      const output = resolve(opts.output ?? `${base}${opts.foldBn ? "-folded" : ""}.${opts.format}`);
      if (output === input) throw new Error(`export: the output ${output} is the input; choose another --output`);
      const network = loadTrainedNetwork(input);
      writeExport(network, output, opts.format, opts.foldBn);
      process.stdout.write(`wrote ${output} (${network.description}${opts.foldBn ? ", BN folded" : ""}; input shape [batch, ${network.inputShape.slice(1).join(", ")}])\n`);
    });
}
