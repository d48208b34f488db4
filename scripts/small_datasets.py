#!/usr/bin/env python3
"""Small real datasets for checking defaults: the first N training and M test images of an IDX
dataset, downsampled by area averaging to S x S pixels, written as the four IDX files.

    python3 scripts/small_datasets.py SRC_DIR DST_DIR --side 8 --train 3000 --test 1000
"""
import argparse
import gzip
import os
import struct


def read_idx(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def find(src, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(src, name)
        if os.path.exists(p):
            return p
    raise SystemExit(f"{src}: no {stem}")


def write_idx(path, dims, payload, code=0x08):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, code, len(dims)]))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(payload)


def downsample(pixels, h, w, side):
    out = bytearray()
    for r in range(side):
        r0, r1 = r * h // side, (r + 1) * h // side
        for c in range(side):
            c0, c1 = c * w // side, (c + 1) * w // side
            total = sum(pixels[y * w + x] for y in range(r0, r1) for x in range(c0, c1))
            out.append(round(total / ((r1 - r0) * (c1 - c0))))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--side", type=int, required=True)
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--test", type=int, default=1000)
    a = ap.parse_args()
    os.makedirs(a.dst, exist_ok=True)
    for kind, n in (("train", a.train), ("t10k", a.test)):
        dims, px = read_idx(find(a.src, f"{kind}-images-idx3-ubyte"))
        _, lb = read_idx(find(a.src, f"{kind}-labels-idx1-ubyte"))
        count, h, w = dims
        n = min(n, count)
        out = bytearray()
        for i in range(n):
            out += downsample(px[i * h * w:(i + 1) * h * w], h, w, a.side)
        write_idx(os.path.join(a.dst, f"{kind}-images-idx3-ubyte"), (n, a.side, a.side), bytes(out))
        write_idx(os.path.join(a.dst, f"{kind}-labels-idx1-ubyte"), (n,), lb[:n])


if __name__ == "__main__":
    main()
