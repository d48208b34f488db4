#!/usr/bin/env python3
"""Fits the LUT coefficients of the resource model (src/vocab/cost.rs) to Yosys.

Usage: python3 scripts/calibrate_estimate.py [--fit TERM,TERM... | --check] DESIGN_DIR...
With --fit only the terms named are fitted and the others keep the coefficients of
src/vocab/cost.rs; with --check nothing is fitted and each design's error under those
coefficients is printed (scripts/calibrate_conv.sh). Each DESIGN_DIR was written by `cbnn rtl` (it holds estimate.json) and synthesized with
`cbnn synth DESIGN_DIR --target xilinx --json DESIGN_DIR.synth.json`. Prints the coefficients
that minimise the squared relative error (non-negative: a negative one is fixed at zero and the
rest refitted), and each design's error under them.
"""
import json
import os
import re
import sys

# The unpacker is a shift register (flip-flops only), so its term is not fitted.
TERMS = ["popcount", "popcount_const", "accumulate", "chunk_mux", "result", "rom", "layer", "output",
         "shift_reg", "lutram", "window", "pool", "stream", "tables",
         "group_sum"]


def current_coefficients():
    """The coefficients of `const XILINX` in src/vocab/cost.rs."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = open(os.path.join(root, "src", "vocab", "cost.rs")).read()
    block = src[src.index("const XILINX: Coefficients"):]
    block = block[: block.index("};")]
    return {k: float(v) for k, v in re.findall(r"(\w+): ([0-9.]+),", block)}


def solve(a, b):
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        if abs(m[c][c]) < 1e-12:
            raise SystemExit(f"singular fit: term {c} has no data")
        for r in range(n):
            if r != c:
                f = m[r][c] / m[c][c]
                m[r] = [x - f * y for x, y in zip(m[r], m[c])]
    return [m[i][n] / m[i][i] for i in range(n)]


def fit(rows, active, fixed):
    a = [[0.0] * len(active) for _ in active]
    b = [0.0] * len(active)
    for x, y in rows:
        w = 1.0 / (y * y)
        y = y - sum(fixed.get(t, 0.0) * x[t] for t in TERMS if t not in active)
        for i, ti in enumerate(active):
            b[i] += w * x[ti] * y
            for j, tj in enumerate(active):
                a[i][j] += w * x[ti] * x[tj]
    return dict(zip(active, solve(a, b)))


def main():
    args = sys.argv[1:]
    only = None
    if args and args[0] == "--fit":
        only = args[1].split(",")
        args = args[2:]
    elif args and args[0] == "--check":
        only = []
        args = args[1:]
    fixed = current_coefficients() if only is not None else {}
    rows = []
    for d in args:
        d = d.rstrip("/")
        terms = json.load(open(f"{d}/estimate.json"))["terms"]
        luts = json.load(open(f"{d}.synth.json"))["luts"]
        rows.append(({t: terms.get(t, 0.0) for t in TERMS}, float(luts), d))
    active = [t for t in TERMS if any(x[t] for x, _, _ in rows) and (only is None or t in only)]
    coef = dict(fixed)
    while active:
        coef = dict(fixed)
        coef.update(fit([(x, y) for x, y, _ in rows], active, fixed))
        neg = [t for t in active if coef[t] < 0]
        if not neg:
            break
        worst = min(neg, key=lambda t: coef[t])
        active.remove(worst)
        fixed[worst] = 0.0
    for t in TERMS:
        print(f"{t:10} {coef.get(t, 0.0):.3f}")
    worst = 0.0
    for x, y, d in rows:
        pred = sum(coef.get(t, 0.0) * x[t] for t in TERMS)
        worst = max(worst, abs(pred - y) / y)
        print(f"{d:30} Yosys {y:8.0f} model {pred:8.0f} {100 * (pred - y) / y:+6.1f} %")
    print(f"worst error {100 * worst:.1f} % over {len(rows)} designs")


if __name__ == "__main__":
    main()
