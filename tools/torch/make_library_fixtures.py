#!/usr/bin/env python3
"""Golden values from PyTorch for the library conveniences (test/core/library.test.ts).

Writes test/fixtures/library.json:

  adam        Sequential(Linear(6,5,bias=False), BatchNorm1d(5), Sigmoid(), Linear(5,3))
              trained 4 steps with CrossEntropyLoss and each optimizer setting
              (Adam with and without L2 weight decay, amsgrad, other betas/eps;
              AdamW with decoupled decay, with amsgrad): the initial
              state_dict, the batch, and per step the loss and the whole
              state_dict after the step.
  schedulers  the learning rate after each of 25 scheduler.step() calls of
              StepLR, ExponentialLR and CosineAnnealingLR (past T_max).
  ops         softmax / log_softmax along every dim of a (3, 4, 5) tensor
              (values and gradients for a given upstream gradient), argmax
              along every dim and over the flattened tensor, with ties.
  models      repr(model) of three models, and per module (in tree order)
              the output shape of a forward pass on a sample input and the
              parameter counts; `summary` is those numbers laid out as
              torchinfo 1.8 lays out summary(model, input_size) by default
              (torchinfo itself is not packaged by Debian: its layout rules
              are reproduced below, from its formatting.py, layer_info.py and
              model_statistics.py).

All arithmetic is float64; inputs are rounded to float32-representable
values so the TypeScript side can load them into float32 tensors too.

Regenerate, from the project root:

    apt-get install python3-torch libopenblas0-pthread
    /usr/bin/python3 tools/torch/make_library_fixtures.py
"""

import json
import math
import os

import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)
torch.manual_seed(12)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "library.json")


def f32(t):
    return t.float().double()


def randn(*shape, scale=1.0):
    return f32(torch.randn(*shape) * scale)


def enc(t):
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32):
        return {"shape": list(t.shape), "data": [int(v) for v in t.flatten().tolist()]}
    return {"shape": list(t.shape), "data": [float(v) for v in t.double().flatten().tolist()]}


def state_dict_json(module):
    return {k: enc(v) for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------
# adam

def mlp():
    # No bias before BN: its gradient is zero up to rounding noise, which Adam
    # would normalize into full-size steps of random sign.
    model = nn.Sequential(nn.Linear(6, 5, bias=False), nn.BatchNorm1d(5), nn.Sigmoid(), nn.Linear(5, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(f32(p))
        model[1].weight.copy_(randn(5, scale=0.3) + 1)
        model[1].bias.copy_(randn(5, scale=0.3))
    return model


ADAM_CASES = [
    dict(name="adam_defaults", cls="Adam", options=dict(lr=0.01)),
    dict(name="adam_l2", cls="Adam", options=dict(lr=0.02, weight_decay=0.1)),
    dict(name="adam_amsgrad_betas", cls="Adam", options=dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, amsgrad=True, weight_decay=0.01)),
    dict(name="adamw", cls="AdamW", options=dict(lr=0.03, weight_decay=0.1)),
    dict(name="adamw_amsgrad", cls="AdamW", options=dict(lr=0.01, betas=(0.5, 0.9), amsgrad=True)),
]


def adam_case(spec):
    model = mlp()
    initial = state_dict_json(model)
    opt = getattr(torch.optim, spec["cls"])(model.parameters(), **spec["options"])
    loss_fn = nn.CrossEntropyLoss()
    x = randn(8, 6, scale=1.5)
    y = torch.randint(0, 3, (8,))
    steps = []
    model.train()
    for _ in range(4):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        steps.append({"loss": float(loss), "state": state_dict_json(model)})
    options = dict(spec["options"])
    return {
        "name": spec["name"],
        "optimizer": spec["cls"],
        "options": {
            "lr": options["lr"],
            "betas": list(options.get("betas", (0.9, 0.999))),
            "eps": options.get("eps", 1e-8),
            "weightDecay": options.get("weight_decay", 0.0 if spec["cls"] == "Adam" else 0.01),
            "amsgrad": options.get("amsgrad", False),
        },
        "initial": initial,
        "x": enc(x),
        "y": [int(v) for v in y.tolist()],
        "steps": steps,
    }


# --------------------------------------------------------------------------
# schedulers

def lr_sequence(make, lr=0.1, steps=25):
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make(opt)
    out = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return out


SCHEDULERS = [
    dict(name="StepLR", options=dict(stepSize=3, gamma=0.5),
         lrs=lr_sequence(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5))),
    dict(name="ExponentialLR", options=dict(gamma=0.9),
         lrs=lr_sequence(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9))),
    dict(name="CosineAnnealingLR", options=dict(tMax=7, etaMin=0.001),
         lrs=lr_sequence(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0.001))),
    dict(name="CosineAnnealingLR", options=dict(tMax=10),
         lrs=lr_sequence(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10), lr=0.5)),
]
# The base learning rate of each sequence is its first entry.


# --------------------------------------------------------------------------
# ops

def ops_cases():
    x = randn(3, 4, 5, scale=3.0)
    x[0, 0, 0] = 40.0  # a large logit: the max-shift must keep exp() finite
    g = randn(3, 4, 5)
    cases = {"x": enc(x), "g": enc(g), "softmax": {}, "log_softmax": {}, "argmax": {}}
    for dim in (0, 1, 2, -1):
        for name, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
            xi = x.clone().requires_grad_(True)
            y = fn(xi, dim)
            y.backward(g)
            cases[name][str(dim)] = {"y": enc(y), "dx": enc(xi.grad)}
    ties = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, -5.0, -1.0, 7.0]])
    cases["ties"] = enc(ties)
    for dim in (0, 1, -1):
        cases["argmax"][str(dim)] = enc(torch.argmax(ties, dim))
        cases["argmax"][f"{dim}_keepdim"] = enc(torch.argmax(ties, dim, keepdim=True))
    cases["argmax"]["flat"] = int(torch.argmax(ties))
    cases["argmax"]["x_2"] = enc(torch.argmax(x, 2))
    return cases


# --------------------------------------------------------------------------
# models: repr and torchinfo's layout

def models():
    mlp_bn = nn.Sequential(nn.Linear(784, 100, bias=False), nn.BatchNorm1d(100), nn.Sigmoid(), nn.Linear(100, 10))
    cnn = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8, eps=1e-3, momentum=None),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 4, 1, stride=2),
        nn.AvgPool2d(3, stride=1, padding=1),
        nn.LocalResponseNorm(5),
        nn.Dropout(0.4),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 10),
    )
    nested = nn.Sequential(
        nn.Sequential(nn.Linear(20, 16), nn.BatchNorm1d(16, affine=False), nn.Tanh()),
        nn.Sequential(nn.Linear(16, 8), nn.Sequential(nn.BatchNorm1d(8, track_running_stats=False), nn.ReLU())),
        nn.Linear(8, 3),
    )
    nested[0][0].weight.requires_grad_(False)
    nested[0][0].bias.requires_grad_(False)
    return [
        dict(name="mlp_bn", model=mlp_bn, input=[1, 784]),
        dict(name="cnn", model=cnn, input=[2, 3, 16, 16]),
        dict(name="nested_frozen", model=nested, input=[4, 20]),
    ]


def torchinfo_layout(model, input_size):
    """torchinfo 1.8's default summary(model, input_size) text, from the same numbers it would gather."""
    model.float().eval()
    rows = []
    per_depth = {}

    def visit(m, depth):
        per_depth[depth] = per_depth.get(depth, 0) + 1
        row = dict(module=m, name=type(m).__name__, depth=depth, idx=per_depth[depth],
                   leaf=not any(m.children()), out=None, out_bytes=0, children=[])
        params = list(m.named_parameters())
        row["params"] = sum(p.numel() for _, p in params)
        row["trainable"] = sum(p.numel() for _, p in params if p.requires_grad)
        row["param_bytes"] = sum(p.numel() * p.element_size() for _, p in params)
        rows.append(row)
        for c in m.children():
            row["children"].append(visit(c, depth + 1))
        return row

    visit(model, 0)
    by_module = {id(r["module"]): r for r in rows}

    def hook(m, _inp, out):
        r = by_module[id(m)]
        r["out"] = list(out.shape)
        r["out_bytes"] = out.numel() * out.element_size()

    handles = [r["module"].register_forward_hook(hook) for r in rows]
    with torch.no_grad():
        model(torch.zeros(*input_size, dtype=torch.float32))
    for h in handles:
        h.remove()

    for r in rows:
        r["macs"] = 0
        for name, p in r["module"].named_parameters():
            if name in ("weight", "bias"):
                if "Conv" in r["name"]:
                    r["macs"] += p.numel() * math.prod(r["out"][:1] + r["out"][2:])
                else:
                    r["macs"] += r["out"][0] * p.numel()

    def desc(r):
        for c in r["children"]:
            yield c
            yield from desc(c)

    def leftover(r, key):
        return r[key] - sum(d[key] if d["leaf"] else leftover(d, key) for d in desc(r))

    total = trainable = param_bytes = out_bytes = macs = 0
    for r in rows:
        if r["leaf"]:
            macs += r["macs"]
            if r["params"] > 0:
                out_bytes += r["out_bytes"] * 2
            total += r["params"]
            trainable += r["trainable"]
            param_bytes += r["param_bytes"]
        else:
            total += max(leftover(r, "params"), 0)
            trainable += max(leftover(r, "trainable"), 0)

    def layer_name(r):
        return f'{r["name"]}: {r["depth"]}-{r["idx"]}' if r["depth"] > 0 else r["name"]

    width = 40
    longest = max(len(layer_name(r)) + r["depth"] * 5 + 1 for r in rows)
    if longest >= width:
        width = math.ceil(longest / 5) * 5
    divider = "=" * (width + 50)

    def line(a, b, c):
        return f"{a:<{width}} {b:<25} {c:<25} ".rstrip()

    def prefix(depth):
        if depth == 0:
            return ""
        if depth == 1:
            return "├─"
        return "│    " * (depth - 1) + "└─"

    def params_text(r):
        if r["params"] == 0:
            return "--"
        if r["leaf"] or r["depth"] == 3:
            s = f'{r["params"]:,}'
            return s if r["trainable"] else f"({s})"
        own = leftover(r, "params")
        return f"{own:,}" if own > 0 else "--"

    lines = [divider, line("Layer (type:depth-idx)", "Output Shape", "Param #"), divider]
    for r in rows:
        if r["depth"] > 3:
            continue
        lines.append(line(prefix(r["depth"]) + layer_name(r), str(r["out"]) if r["out"] else "--", params_text(r)))
    input_bytes = math.prod(input_size) * 4
    if macs >= 1e12:
        unit, value = "T", macs / 1e12
    elif macs >= 1e9:
        unit, value = "G", macs / 1e9
    else:
        unit, value = "M", macs / 1e6
    value_text = f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"
    mb = lambda b: f"{b / 1e6:,.2f}"
    lines += [
        divider,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        f"Total mult-adds ({unit}): {value_text}",
        divider,
        f"Input size (MB): {mb(input_bytes)}",
        f"Forward/backward pass size (MB): {mb(out_bytes)}",
        f"Params size (MB): {mb(param_bytes)}",
        f"Estimated Total Size (MB): {mb(input_bytes + out_bytes + param_bytes)}",
        divider,
    ]
    layers = [dict(name=layer_name(r), depth=r["depth"], output_shape=r["out"], params=r["params"],
                   trainable=r["trainable"]) for r in rows]
    return "\n".join(lines), layers


def model_cases():
    out = []
    for spec in models():
        text, layers = torchinfo_layout(spec["model"], spec["input"])
        out.append({"name": spec["name"], "input": spec["input"], "repr": repr(spec["model"]),
                    "layers": layers, "summary": text})
    return out


def main():
    fixture = {
        "torch_version": torch.__version__,
        "adam": [adam_case(s) for s in ADAM_CASES],
        "schedulers": SCHEDULERS,
        "ops": ops_cases(),
        "models": model_cases(),
    }
    with open(OUT, "w") as f:
        json.dump(fixture, f)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
