#!/usr/bin/env python3
"""Executes a graph written by `cbnn export` with qonnx's executor on a dataset's test images
and compares its class scores with the scores `cbnn eval --predictions P.csv --scores` wrote.

    python3 qonnx_check.py M.onnx DATASET_DIR P.csv [--count N]

The features are built from the metadata the export wrote (`cbnn.planes`, `cbnn.input`,
`cbnn.format`): feature p * K + j is plane planes[j] of pixel p, as +1/-1 for `qonnx`
graphs and as the bit (1/0) for `finn-onnx` graphs. Prints one line with the number of images
compared and the number that differ in any score; exits 1 if any differs, 2 on bad input.
Needs qonnx and onnxruntime (scripts/setup-venv.sh installs them into target/venv).
"""

import argparse
import csv
import gzip
import os
import sys

import numpy as np


def fail(message):
    print(f"qonnx_check: {message}", file=sys.stderr)
    sys.exit(2)


def read_idx_images(directory):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                data = f.read()
            break
    else:
        fail(f"{directory} holds no t10k-images-idx3-ubyte[.gz]")
    if len(data) < 16 or data[2] != 8:
        fail(f"{path} is not an IDX file of bytes")
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    count = shape[0]
    pixels = int(np.prod(shape[1:]))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != count * pixels:
        fail(f"{path} declares {count} images of {pixels} bytes but holds {body.size} bytes")
    return body.reshape(count, pixels)


def read_scores(path, count):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "score_0" not in rows[0]:
        fail(f"{path} has no score columns (write it with cbnn eval --predictions P.csv --scores)")
    columns = sorted((k for k in rows[0] if k.startswith("score_")), key=lambda k: int(k[6:]))
    scores = np.array([[int(r[c]) for c in columns] for r in rows[:count]], dtype=np.int64)
    return scores


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx")
    parser.add_argument("dataset")
    parser.add_argument("predictions")
    parser.add_argument("--count", type=int, default=None)
    args = parser.parse_args()

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from qonnx.transformation.infer_shapes import InferShapes

    model = ModelWrapper(args.onnx).transform(InferShapes())
    meta = {p.key: p.value for p in model.model.metadata_props}
    for key in ("cbnn.format", "cbnn.planes", "cbnn.input", "cbnn.classes"):
        if key not in meta:
            fail(f"{args.onnx} has no {key} metadata (was it written by cbnn export?)")
    planes = [int(p) for p in meta["cbnn.planes"].split(",")]
    h, w, c = (int(v) for v in meta["cbnn.input"].split("x"))
    images = read_idx_images(args.dataset)
    if images.shape[1] != h * w * c:
        fail(f"the images have {images.shape[1]} pixels, the model takes {h}x{w}x{c}")
    count = images.shape[0] if args.count is None else min(args.count, images.shape[0])
    expected = read_scores(args.predictions, count)
    if expected.shape[0] < count:
        fail(f"{args.predictions} has {expected.shape[0]} rows, {count} are compared")

    inp = model.graph.input[0]
    batch = inp.type.tensor_type.shape.dim[0].dim_value
    out_name = model.graph.output[0].name
    bits = np.stack([(images[:count] >> p) & 1 for p in planes], axis=2)
    features = bits.reshape(count, -1).astype(np.float32)
    if meta["cbnn.format"] == "qonnx":
        features = 2.0 * features - 1.0
    got = np.zeros((count, int(meta["cbnn.classes"])), dtype=np.int64)
    for start in range(0, count, batch):
        chunk = features[start : start + batch]
        n = chunk.shape[0]
        if n < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - n, chunk.shape[1]), np.float32)])
        out = execute_onnx(model, {inp.name: chunk})[out_name]
        if not np.all(out == np.round(out)):
            fail("the graph gave a score that is not an integer")
        got[start : start + n] = out[:n].astype(np.int64)
    differ = int(np.sum(np.any(got != expected, axis=1)))
    print(
        f"{meta['cbnn.format']}: {count} images, {differ} differ in a score "
        f"(classes agree on {int(np.sum(got.argmax(1) == expected.argmax(1)))})"
    )
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
