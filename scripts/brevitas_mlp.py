#!/usr/bin/env python3
"""Trains a fully binary MLP with Brevitas on a dataset's bit planes, exports it to QONNX and
writes the model's integer class scores on the test images, for `cbnn import`.

    python3 brevitas_mlp.py DATASET_DIR OUT_DIR [--planes 7,6] [--hidden 256,256]
        [--epochs 10] [--limit N] [--test-count N] [--seed 1] [--variant NAME]

Run it through scripts/brevitas.sh, which installs torch and Brevitas into their own virtual
environment (several GB; not part of the test command).

The network sees the features the way cbnn does: feature p * K + j is plane planes[j] of pixel
p (row-major), +1 for a set bit and -1 for a clear one. Every layer is binary: a
`QuantIdentity` with a bipolar quantizer before each `QuantLinear`, weights binary with a
learned scale (initialized from the weights' mean magnitude) per output channel (per tensor on
the output layer, so that the class scores keep their order), biases and batch norm on the
hidden layers. Writes OUT_DIR/model.onnx (QONNX, batch 1)
and OUT_DIR/scores.csv: per test image `index,label,predicted,score_0..`, the score of class c
being the number of the output layer's inputs whose sign matches its weight's, computed from the
Brevitas model's own activations (integers, so float rounding cannot blur a comparison).

`--variant` writes a model `cbnn import` must refuse instead: `output-bias` (a bias on the
output layer), `act2` (2-bit activations, a multi-bit `Quant` node), `relu` (a `Relu` between
batch norm and the activation quantizer).
"""

import argparse
import csv
import gzip
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from brevitas.core.scaling import ScalingImplType
from brevitas.export import export_qonnx
from brevitas.nn import QuantIdentity, QuantLinear
from brevitas.quant import (
    Int8ActPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
)


class BinaryWeightPerChannel(SignedBinaryWeightPerTensorConst):
    scaling_impl_type = ScalingImplType.PARAMETER_FROM_STATS
    scaling_stats_op = "AVE"
    scaling_per_output_channel = True


class BinaryWeightPerTensor(SignedBinaryWeightPerTensorConst):
    scaling_impl_type = ScalingImplType.PARAMETER_FROM_STATS
    scaling_stats_op = "AVE"
    scaling_per_output_channel = False


class TwoBitAct(Int8ActPerTensorFloat):
    bit_width = 2


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(directory, stem):
    for ext in (".gz", ""):
        path = os.path.join(directory, stem + ext)
        if os.path.exists(path):
            return read_idx(path)
    sys.exit(f"brevitas_mlp: {directory} holds no {stem}[.gz]")


def features(images, planes):
    flat = images.reshape(images.shape[0], -1)
    bits = np.stack([(flat >> p) & 1 for p in planes], axis=2).reshape(flat.shape[0], -1)
    return torch.from_numpy(bits.astype(np.float32) * 2.0 - 1.0)


def build(n_in, hidden, classes, variant):
    layers = []
    width = n_in
    for i, h in enumerate(hidden):
        layers.append(QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True))
        layers.append(QuantLinear(width, h, bias=True, weight_quant=BinaryWeightPerChannel))
        layers.append(nn.BatchNorm1d(h))
        if variant == "relu" and i == 0:
            layers.append(nn.ReLU())
        width = h
    act = TwoBitAct if variant == "act2" else SignedBinaryActPerTensorConst
    layers.append(QuantIdentity(act_quant=act, return_quant_tensor=True))
    layers.append(
        QuantLinear(width, classes, bias=variant == "output-bias", weight_quant=BinaryWeightPerTensor)
    )
    return nn.Sequential(*layers)


def integer_scores(net, x):
    """The output layer's matches, from the model's own activations before it."""
    with torch.no_grad():
        h = net[:-1](x)
        h = h.value if hasattr(h, "value") else h
        w = net[-1].weight
        hs = (h >= 0).float() * 2 - 1
        ws = (w >= 0).float() * 2 - 1
        dot = hs @ ws.t()
        return ((dot + w.shape[1]) / 2).round().long()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("out")
    parser.add_argument("--planes", default="7,6")
    parser.add_argument("--hidden", default="256,256")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--test-count", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variant", default="none", choices=["none", "output-bias", "act2", "relu"])
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    planes = [int(p) for p in args.planes.split(",")]
    hidden = [int(h) for h in args.hidden.split(",")]

    train_x = load(args.dataset, "train-images-idx3-ubyte")
    train_y = load(args.dataset, "train-labels-idx1-ubyte")
    test_x = load(args.dataset, "t10k-images-idx3-ubyte")
    test_y = load(args.dataset, "t10k-labels-idx1-ubyte")
    if args.limit:
        train_x, train_y = train_x[: args.limit], train_y[: args.limit]
    if args.test_count:
        test_x, test_y = test_x[: args.test_count], test_y[: args.test_count]
    xs, ys = features(train_x, planes), torch.from_numpy(train_y.astype(np.int64))
    xt, yt = features(test_x, planes), torch.from_numpy(test_y.astype(np.int64))
    classes = int(max(train_y.max(), test_y.max())) + 1

    net = build(xs.shape[1], hidden, classes, args.variant)
    opt = torch.optim.Adam(net.parameters(), lr=0.005)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(args.epochs, 1))
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(xs.shape[0])
        total = 0.0
        for start in range(0, xs.shape[0], 100):
            idx = order[start : start + 100]
            out = net(xs[idx])
            out = out.value if hasattr(out, "value") else out
            loss = loss_fn(out, ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
        sched.step()
        net.eval()
        acc = (integer_scores(net, xt).argmax(1) == yt).float().mean().item()
        print(f"epoch {epoch + 1}  loss {total / xs.shape[0]:.4f}  test {100 * acc:.2f}%", flush=True)

    net.eval()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "model.onnx")
    export_qonnx(net, torch.zeros(1, xs.shape[1]), path)
    # The exporter moves large initializers to model.onnx.data; keep the model in one file.
    import onnx

    onnx.save(onnx.load(path), path, save_as_external_data=False)
    if os.path.exists(path + ".data"):
        os.remove(path + ".data")
    scores = integer_scores(net, xt).numpy()
    with open(os.path.join(args.out, "scores.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "label", "predicted"] + [f"score_{c}" for c in range(classes)])
        for i, row in enumerate(scores):
            w.writerow([i, int(test_y[i]), int(np.argmax(row))] + [int(v) for v in row])
    acc = float(np.mean(scores.argmax(1) == test_y))
    print(f"wrote {args.out}/model.onnx and scores.csv: {len(scores)} test images, accuracy {100 * acc:.2f}%")


if __name__ == "__main__":
    main()
