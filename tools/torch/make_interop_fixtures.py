#!/usr/bin/env python3
"""PyTorch and ONNX's checker on covshift's models, for test/interop/pytorch.test.ts.

Writes into test/fixtures/interop/:

  torch_mlp_bn.safetensors   the state_dict() of PyTorch's §4.1 BN network
                             (784 -> 3 x [Linear(bias=False), BatchNorm1d, Sigmoid] -> Linear(100, 10)),
                             trained 5 SGD steps so that weights, gamma, beta, the running
                             statistics and num_batches_tracked (int64, I64 in the file) all moved
  torch_convnet_bn.safetensors  the same for a small conv network (Conv2d without bias,
                             BatchNorm2d, ReLU, MaxPool2d, Flatten, Linear), for BN per feature map
  interop.json               PyTorch's eval-mode outputs of both on the inputs both sides compute
                             from a formula (hashed_inputs below); PyTorch's outputs after
                             load_state_dict(strict=True) of covshift's own safetensors file of the
                             §4.1 network, with that file's SHA-256 (the test rebuilds the bytes and
                             checks the hash); the result of onnx.checker.check_model(full_check=True)
                             on each ONNX export the tests run in onnxruntime-node.

covshift's files come from tools/torch/write_covshift_interop_models.mjs (run here, on
dist/ — build first). safetensors is read and written by the small functions below
(the Python `safetensors` package is not in Debian); they follow the format's
specification as src/interop/safetensors.ts does.

Regenerate, from the project root:

    apt-get install python3-torch python3-onnx libopenblas0-pthread
    npm run build && /usr/bin/python3 tools/torch/make_interop_fixtures.py
"""

import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "interop")

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
TORCH_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
SIZES = {"F32": 4, "F64": 8, "I64": 8}


def save_safetensors(state, path):
    """state_dict -> safetensors: JSON header padded to 8 bytes, 8-byte dtypes first."""
    items = sorted(state.items(), key=lambda kv: (-SIZES[DTYPES[kv[1].dtype]], kv[0]))
    header, blobs, offset = {}, [], 0
    for name, t in items:
        data = t.detach().contiguous().cpu().numpy().tobytes()  # little-endian: checked in main()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_safetensors(path):
    """safetensors -> {name: tensor}, checking that the tensors tile the data."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n :]
    out, covered = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        begin, end = e["data_offsets"]
        assert begin == covered, f"{name}: gap or overlap at {begin}"
        covered = end
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=TORCH_DTYPES[e["dtype"]]) if end > begin else torch.empty(0, dtype=TORCH_DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    assert covered == len(data), "trailing bytes"
    return out


def hashed_inputs(shape, offset=0, scale=1.0):
    """As test/interop/fixtureModels.ts: ((i + offset) * 2654435761 mod 2^32) / 2^32, in float32."""
    n = 1
    for d in shape:
        n *= d
    values = [((i + offset) * 2654435761 % 4294967296) / 4294967296 * scale for i in range(n)]
    return torch.tensor(values, dtype=torch.float32).reshape(shape)


def mlp_bn():
    layers, width = [], 784
    for _ in range(3):
        layers += [nn.Linear(width, 100, bias=False), nn.BatchNorm1d(100), nn.Sigmoid()]
        width = 100
    return nn.Sequential(*layers, nn.Linear(100, 10))


def convnet_bn():
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 4, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 2 * 2, 5),
    )


def train_a_few(model, x_shape, classes, steps=5):
    torch.manual_seed(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    model.train()
    for step in range(steps):
        x = torch.rand(x_shape) * 2 - 0.5
        y = torch.randint(0, classes, (x_shape[0],))
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()


def enc(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.flatten().tolist()]}


def main():
    assert sys.byteorder == "little", "the writer above stores the host's byte order"
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    fixture = {"torch_version": torch.__version__}

    # PyTorch -> covshift
    mlp = mlp_bn()
    train_a_few(mlp, (60, 784), 10)
    save_safetensors(mlp.state_dict(), os.path.join(OUT, "torch_mlp_bn.safetensors"))
    x = hashed_inputs([8, 784])
    with torch.no_grad():
        fixture["torch_mlp_bn"] = {
            "input": {"shape": [8, 784], "offset": 0},
            "output": enc(mlp(x)),
            "num_batches_tracked": int(mlp[1].num_batches_tracked),
        }

    conv = convnet_bn()
    train_a_few(conv, (16, 3, 8, 8), 5)
    save_safetensors(conv.state_dict(), os.path.join(OUT, "torch_convnet_bn.safetensors"))
    xc = hashed_inputs([4, 3, 8, 8], offset=17, scale=2.0)
    with torch.no_grad():
        fixture["torch_convnet_bn"] = {
            "input": {"shape": [4, 3, 8, 8], "offset": 17, "scale": 2.0},
            "output": enc(conv(xc)),
            "num_batches_tracked": int(conv[1].num_batches_tracked),
        }

    # covshift -> PyTorch, and covshift's ONNX exports -> ONNX's checker
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["node", os.path.join(ROOT, "tools", "torch", "write_covshift_interop_models.mjs"), tmp], check=True, cwd=ROOT)
        path = os.path.join(tmp, "covshift_mlp_bn.safetensors")
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        state = load_safetensors(path)
        assert state["1.num_batches_tracked"].dtype == torch.int64
        fresh = mlp_bn()
        result = fresh.load_state_dict(state, strict=True)
        assert not result.missing_keys and not result.unexpected_keys
        fresh.eval()
        with torch.no_grad():
            fixture["covshift_mlp_bn_in_torch"] = {
                "sha256": sha,
                "input": {"shape": [8, 784], "offset": 1000},
                "output": enc(fresh(hashed_inputs([8, 784], offset=1000))),
                "num_batches_tracked": int(fresh[1].num_batches_tracked),
                "num_batches_tracked_dtype": str(fresh[1].num_batches_tracked.dtype),
            }

        try:
            import onnx
        except ImportError:
            onnx = None
        checks = {}
        for name in sorted(os.listdir(tmp)):
            if not name.endswith(".onnx"):
                continue
            if onnx is None:
                checks[name] = "not checked (python3-onnx missing)"
                continue
            model = onnx.load(os.path.join(tmp, name))
            onnx.checker.check_model(model, full_check=True)  # raises on any error, shape inference included
            checks[name] = f"passed onnx.checker.check_model(full_check=True), onnx {onnx.__version__}, opset {model.opset_import[0].version}, IR {model.ir_version}"
        fixture["onnx_checker"] = checks

    with open(os.path.join(OUT, "interop.json"), "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(json.dumps(fixture["onnx_checker"], indent=1))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
