#!/usr/bin/env python3
"""Golden values from PyTorch for the BN family (test/bnfamily/*.test.ts).

Writes test/fixtures/bnfamily.json:

  batchnorm3d     BatchNorm3d(3) on (N, C, D, H, W) = (2, 3, 2, 3, 2): two
                  training batches (x, dy, y, dx, dweight, dbias, running
                  statistics, num_batches_tracked after each), then an
                  eval-mode forward on another input.
  empty           BatchNorm1d(3) and BatchNorm3d(2) given an empty batch in
                  training: output shape, running statistics and counter after.
  track_toggle    BatchNorm1d(3) built with running statistics, then
                  track_running_stats = False: a training batch (output,
                  statistics unchanged), an eval forward (uses the running
                  statistics); then True again and one more training batch.
  sync_reference  BatchNorm1d(4) on a batch of 12 (the oracle SyncBatchNorm's
                  shards must reproduce): y, dx, dweight, dbias, running stats.

All arithmetic is float64; inputs are rounded to float32-representable values
so the tests can load them into float32 tensors too. Tensors are stored as
{"shape": [...], "data": [...]}.

Regenerate, from the project root:

    apt-get install python3-torch libopenblas0-pthread
    /usr/bin/python3 tools/torch/make_bnfamily_fixtures.py
"""

import json
import os

import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "bnfamily.json")


def f32(t):
    return t.to(torch.float32).to(torch.float64)


def enc(t):
    t = t.detach()
    return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}


def randn(*shape, scale=1.0, shift=0.0):
    return f32(torch.randn(*shape) * scale + shift)


def train_steps(bn, shape, steps):
    out = []
    for _ in range(steps):
        x = randn(*shape, scale=2.0, shift=0.5).requires_grad_(True)
        dy = randn(*shape)
        bn.zero_grad()
        y = bn(x)
        y.backward(dy)
        out.append({
            "x": enc(x), "dy": enc(dy), "y": enc(y), "dx": enc(x.grad),
            "dweight": enc(bn.weight.grad), "dbias": enc(bn.bias.grad),
            "running_mean": enc(bn.running_mean), "running_var": enc(bn.running_var),
            "num_batches_tracked": int(bn.num_batches_tracked),
        })
    return out


def main():
    torch.manual_seed(13)
    fixtures = {}

    bn3 = nn.BatchNorm3d(3)
    with torch.no_grad():
        bn3.weight.copy_(randn(3, shift=1.0))
        bn3.bias.copy_(randn(3))
    init = {"weight": enc(bn3.weight), "bias": enc(bn3.bias)}
    steps = train_steps(bn3, (2, 3, 2, 3, 2), 2)
    bn3.eval()
    xe = randn(2, 3, 2, 3, 2)
    fixtures["batchnorm3d"] = {"init": init, "steps": steps, "eval": {"x": enc(xe), "y": enc(bn3(xe))}}

    empty = {}
    for name, bn, shape in [("bn1d", nn.BatchNorm1d(3), (0, 3)), ("bn3d", nn.BatchNorm3d(2), (0, 2, 2, 2, 2))]:
        y = bn(torch.zeros(*shape))
        empty[name] = {"shape": list(y.shape), "running_mean": enc(bn.running_mean),
                       "running_var": enc(bn.running_var), "num_batches_tracked": int(bn.num_batches_tracked)}
    fixtures["empty"] = empty

    bn = nn.BatchNorm1d(3)
    first = train_steps(bn, (5, 3), 1)[0]
    bn.track_running_stats = False
    off = train_steps(bn, (5, 3), 1)[0]
    bn.eval()
    xe = randn(4, 3)
    eval_off = {"x": enc(xe), "y": enc(bn(xe))}
    bn.train()
    bn.track_running_stats = True
    on = train_steps(bn, (5, 3), 1)[0]
    fixtures["track_toggle"] = {"first": first, "off": off, "eval_off": eval_off, "on_again": on}

    bn = nn.BatchNorm1d(4)
    with torch.no_grad():
        bn.weight.copy_(randn(4, shift=1.0))
        bn.bias.copy_(randn(4))
    init = {"weight": enc(bn.weight), "bias": enc(bn.bias)}
    fixtures["sync_reference"] = {"init": init, "steps": train_steps(bn, (12, 4), 2)}

    with open(OUT, "w") as f:
        json.dump(fixtures, f)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
