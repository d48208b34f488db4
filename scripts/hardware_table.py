#!/usr/bin/env python3
"""Prints the Markdown hardware table from design directories written by scripts/hardware.sh.

Usage: python3 scripts/hardware_table.py LABEL=DIR [LABEL=DIR ...]
"""
import json
import pathlib
import sys

print("| design | planes | hidden | folding (PE,SIMD per layer) | cycles/image | latency | LUTs (estimate) | FFs | block RAM bits | LUT RAM bits | test accuracy |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for arg in sys.argv[1:]:
    label, d = arg.split("=", 1)
    d = pathlib.Path(d)
    design = json.loads((d / "design.json").read_text())
    synth = json.loads((d / "synth.json").read_text())
    est = json.loads((d / "estimate.json").read_text())
    ev = json.loads((d / "eval.json").read_text())
    folding = " ".join(f"{l['pe']},{l['simd']}" for l in design["layers"])
    print(
        f"| {label} | {design['input']['planes']} | {design['model']['hidden']} | {folding} | "
        f"{synth['cycles_per_image']} | {synth['latency']} | {synth['luts']} ({est['luts']}) | "
        f"{synth['ffs']} | {synth['bram_bits']} | {synth['lutram_bits']} | "
        f"{100 * ev['accuracy']:.2f} % |"
    )
