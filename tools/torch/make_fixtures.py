#!/usr/bin/env python3
"""Golden values from PyTorch for covshift's tests (test/golden.test.ts).

Writes three JSON files into test/fixtures/:

  batchnorm.json  BatchNorm1d on (N, C) and (N, C, L), BatchNorm2d on
                  (N, C, H, W); affine or not; several eps and momentum values,
                  momentum=None (cumulative average) over 3 batches, one case
                  without running stats. Per training batch: input x, upstream
                  gradient dy, output y, dx, dweight, dbias, running_mean,
                  running_var, num_batches_tracked; then an eval-mode forward
                  and backward on another input.
  mlp_sgd.json    Sequential(Linear(6,5), BatchNorm1d(5), Sigmoid(),
                  Linear(5,4,bias=False), BatchNorm1d(4), ReLU(), Linear(4,3))
                  trained 3 steps with CrossEntropyLoss (mean) and SGD
                  (nesterov / plain momentum / no momentum): initial
                  state_dict, inputs, targets; per step the loss, every
                  parameter's gradient and the whole state_dict after the step;
                  finally eval-mode logits on another input.
  ops.json        cross-entropy loss and gradient on (4, 5) logits of +-50,
                  sigmoid and relu values and gradients.

All arithmetic is float64 (torch.set_default_dtype(torch.float64)); inputs are
drawn with torch.manual_seed and then rounded to float32-representable values,
so the TypeScript side can load them losslessly into float32 tensors too and
compare against the float64 results with float32 tolerances. The inputs are
stored in the fixtures: the tests need neither Python nor PyTorch's RNG.
Every tensor is stored as {"shape": [...], "data": [flat, row-major]}; floats
are written by json.dump (Python's repr: shortest string that round-trips).

Regenerate, from the project root:

    apt-get install python3-torch libopenblas0-pthread   # Debian's torch, for /usr/bin/python3
    /usr/bin/python3 tools/torch/make_fixtures.py
"""

import json
import os

import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures")


def f32(t):
    """Round to float32-representable values, kept as float64."""
    return t.float().double()


def randn(*shape, scale=1.0, offset=0.0):
    return f32(torch.randn(*shape) * scale + offset)


def enc(t):
    if t is None:
        return None
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32):
        return {"shape": list(t.shape), "data": [int(v) for v in t.flatten().tolist()]}
    return {"shape": list(t.shape), "data": [float(v) for v in t.double().flatten().tolist()]}


def state_dict_json(module):
    return {k: enc(v) for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------
# batchnorm.json

BN_CASES = [
    # name, class, input shape, eps, momentum, affine, track_running_stats, batches, offset/scale of x
    dict(name="bn1d_NC_affine", cls="BatchNorm1d", shape=(8, 4), eps=1e-5, momentum=0.1,
         affine=True, track=True, batches=2),
    dict(name="bn1d_NC_no_affine", cls="BatchNorm1d", shape=(6, 3), eps=1e-3, momentum=0.3,
         affine=False, track=True, batches=2),
    dict(name="bn1d_NC_batch_of_two", cls="BatchNorm1d", shape=(2, 5), eps=1e-5, momentum=0.9,
         affine=True, track=True, batches=2),
    dict(name="bn1d_NCL_affine_cumulative", cls="BatchNorm1d", shape=(4, 3, 5), eps=1e-5,
         momentum=None, affine=True, track=True, batches=3),
    dict(name="bn1d_NCL_single_sample", cls="BatchNorm1d", shape=(1, 2, 6), eps=0.1, momentum=0.5,
         affine=True, track=True, batches=2),
    dict(name="bn2d_affine", cls="BatchNorm2d", shape=(3, 4, 3, 3), eps=1e-5, momentum=0.1,
         affine=True, track=True, batches=2),
    dict(name="bn2d_no_affine_cumulative", cls="BatchNorm2d", shape=(2, 3, 4, 5), eps=1e-4,
         momentum=None, affine=False, track=True, batches=3),
    dict(name="bn2d_large_offset", cls="BatchNorm2d", shape=(4, 2, 3, 3), eps=1e-5, momentum=0.2,
         affine=True, track=True, batches=2, offset=1000.0, scale=1.0),
    dict(name="bn1d_NC_no_running_stats", cls="BatchNorm1d", shape=(5, 3), eps=1e-5, momentum=0.1,
         affine=True, track=False, batches=1),
]


def bn_case(spec):
    C = spec["shape"][1]
    cls = getattr(nn, spec["cls"])
    bn = cls(C, eps=spec["eps"], momentum=spec["momentum"], affine=spec["affine"],
             track_running_stats=spec["track"])
    if spec["affine"]:
        with torch.no_grad():
            bn.weight.copy_(randn(C, scale=0.5, offset=1.0))
            bn.bias.copy_(randn(C, scale=0.5))
    case = {
        "name": spec["name"],
        "module": spec["cls"],
        "num_features": C,
        "eps": spec["eps"],
        "momentum": spec["momentum"],
        "affine": spec["affine"],
        "track_running_stats": spec["track"],
        "weight": enc(bn.weight) if spec["affine"] else None,
        "bias": enc(bn.bias) if spec["affine"] else None,
        "batches": [],
    }
    offset = spec.get("offset", 0.0)
    scale = spec.get("scale", 2.0)

    def fwd_bwd(x_vals, dy):
        if bn.weight is not None:
            bn.weight.grad = None
            bn.bias.grad = None
        x = x_vals.clone().requires_grad_(True)
        y = bn(x)
        y.backward(dy)
        return {
            "x": enc(x_vals),
            "dy": enc(dy),
            "y": enc(y),
            "dx": enc(x.grad),
            "dweight": enc(bn.weight.grad) if spec["affine"] else None,
            "dbias": enc(bn.bias.grad) if spec["affine"] else None,
            "running_mean": enc(bn.running_mean),
            "running_var": enc(bn.running_var),
            "num_batches_tracked": int(bn.num_batches_tracked) if spec["track"] else None,
        }

    bn.train()
    for _ in range(spec["batches"]):
        x = randn(*spec["shape"], scale=scale, offset=offset + 0.5)
        dy = randn(*spec["shape"])
        case["batches"].append(fwd_bwd(x, dy))
    bn.eval()
    x = randn(*spec["shape"], scale=scale, offset=offset + 0.5)
    dy = randn(*spec["shape"])
    case["eval"] = fwd_bwd(x, dy)
    return case


def make_batchnorm():
    torch.manual_seed(20150211)  # arXiv:1502.03167
    return {
        "torch_version": torch.__version__,
        "note": "float64 PyTorch; inputs are float32-representable. Gradients are per batch (zeroed before each backward).",
        "cases": [bn_case(s) for s in BN_CASES],
    }


# --------------------------------------------------------------------------
# mlp_sgd.json

SGD_CONFIGS = [
    dict(name="nesterov", lr=0.1, momentum=0.9, weight_decay=1e-3, dampening=0.0, nesterov=True),
    dict(name="momentum", lr=0.1, momentum=0.9, weight_decay=1e-3, dampening=0.0, nesterov=False),
    dict(name="plain", lr=0.1, momentum=0.0, weight_decay=1e-3, dampening=0.0, nesterov=False),
]


def make_model():
    return nn.Sequential(
        nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Sigmoid(),
        nn.Linear(5, 4, bias=False), nn.BatchNorm1d(4), nn.ReLU(),
        nn.Linear(4, 3),
    )


def make_mlp_sgd():
    torch.manual_seed(1502)
    model = make_model()
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(f32(t))  # float32-representable initial state
        for bn in (model[1], model[4]):
            C = bn.num_features
            bn.weight.copy_(randn(C, scale=0.3, offset=1.0))
            bn.bias.copy_(randn(C, scale=0.3))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    x = randn(8, 6, scale=1.5)
    targets = torch.tensor([0, 1, 2, 1, 0, 2, 2, 1])
    x_eval = randn(8, 6, scale=1.5)
    loss_fn = nn.CrossEntropyLoss()

    configs = []
    for cfg in SGD_CONFIGS:
        model.load_state_dict(initial)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                              weight_decay=cfg["weight_decay"], dampening=cfg["dampening"],
                              nesterov=cfg["nesterov"])
        steps = []
        for _ in range(3):
            opt.zero_grad()
            loss = loss_fn(model(x), targets)
            loss.backward()
            grads = {k: enc(p.grad) for k, p in model.named_parameters()}
            opt.step()
            steps.append({"loss": loss.item(), "grads": grads, "state_after": state_dict_json(model)})
        model.eval()
        with torch.no_grad():
            eval_logits = model(x_eval)
        configs.append({
            "name": cfg["name"],
            "sgd": {k: cfg[k] for k in ("lr", "momentum", "weight_decay", "dampening", "nesterov")},
            "steps": steps,
            "eval_logits": enc(eval_logits),
        })

    return {
        "torch_version": torch.__version__,
        "model": "Sequential(Linear(6,5), BatchNorm1d(5), Sigmoid(), Linear(5,4,bias=False), "
                 "BatchNorm1d(4), ReLU(), Linear(4,3)); BatchNorm eps=1e-5 momentum=0.1",
        "loss": "CrossEntropyLoss(reduction='mean')",
        "initial_state": {k: enc(v) for k, v in initial.items()},
        "x": enc(x),
        "targets": [int(t) for t in targets.tolist()],
        "x_eval": enc(x_eval),
        "configs": configs,
    }


# --------------------------------------------------------------------------
# ops.json

def make_ops():
    torch.manual_seed(3)
    logits_vals = f32(torch.tensor([
        [50.0, -50.0, 0.0, 49.5, -3.25],
        [-50.0, -50.0, -50.0, -50.0, -49.0],
        [50.0, 50.0, 50.0, 50.0, 50.0],
        [1.5, -0.75, 50.0, -50.0, 2.0],
    ]))
    targets = torch.tensor([3, 4, 0, 1])
    logits = logits_vals.clone().requires_grad_(True)
    loss = nn.CrossEntropyLoss()(logits, targets)
    loss.backward()

    act_x = f32(torch.tensor([-800.0, -50.0, -10.0, -2.5, -1.0, -1e-3, 0.0, 1e-3, 0.5, 1.0, 3.0, 10.0, 50.0, 800.0]))
    act_dy = randn(act_x.shape[0])

    def act(fn):
        x = act_x.clone().requires_grad_(True)
        y = fn(x)
        y.backward(act_dy)
        return {"y": enc(y), "dx": enc(x.grad)}

    return {
        "torch_version": torch.__version__,
        "cross_entropy": {
            "logits": enc(logits_vals),
            "targets": [int(t) for t in targets.tolist()],
            "loss": loss.item(),
            "dlogits": enc(logits.grad),
        },
        "activations": {
            "x": enc(act_x),
            "dy": enc(act_dy),
            "sigmoid": act(torch.sigmoid),
            "relu": act(torch.relu),
        },
    }


def write(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, allow_nan=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")


def main():
    os.makedirs(OUT, exist_ok=True)
    write("batchnorm.json", make_batchnorm())
    write("mlp_sgd.json", make_mlp_sgd())
    write("ops.json", make_ops())


if __name__ == "__main__":
    main()
