#!/usr/bin/env python3
"""Prints the Markdown table of logic-mapped designs from the files scripts/lut_points.sh wrote.

Usage: python3 scripts/lut_table.py LABEL=DIR [LABEL=DIR ...]
"""
import json
import pathlib
import sys


def load(path):
    p = pathlib.Path(path)
    return json.loads(p.read_text()) if p.exists() else None


def took(path):
    p = pathlib.Path(path)
    if not p.exists():
        return "-"
    seconds, _, kb, _ = p.read_text().split()[-4:]
    return f"{float(seconds):.0f} s, {int(kb) / 1024 / 1024:.1f} GB"


print("| design | planes | input bits read | test accuracy | Xilinx LUTs (estimate) | FFs | iCE40 LUT4 | iCE40-HX8K, 32-bit port, --pipe 1: LUT4, fmax | co-simulated (free, stalled), images/s | Yosys xilinx | Yosys ice40 | Verilator build + 10000 images |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for arg in sys.argv[1:]:
    label, d = arg.split("=", 1)
    design = load(f"{d}/design.json")
    est = load(f"{d}/estimate.json")
    xil = load(f"{d}.xilinx.json")
    ice = load(f"{d}.ice40.json")
    ev = load(f"{d}.eval.json")
    narrow = load(f"{d}-narrow.ice40.json")
    reads = len(design["input"]["reads"])
    free = load(f"{d}.sim-free.json")
    stall = load(f"{d}.sim-stall.json")
    sim = (
        f"{free['matched']}/{free['images']}, {stall['matched']}/{stall['images']}, "
        f"{free['images_per_second'] / 1000:.0f} k"
    )
    narrow_sim = load(f"{d}-narrow.sim-stall.json")
    if narrow and narrow.get("fmax_mhz"):
        fit = (
            f"{narrow['luts']} LUT4, {narrow['fmax_mhz']:.1f} MHz, "
            f"{narrow['cycles_per_image']} cycles/image"
        )
        if narrow_sim:
            fit += f" ({narrow_sim['matched']}/{narrow_sim['images']} stalled)"
    elif narrow:
        fit = f"{narrow['luts']} LUT4: {narrow['place_and_route']}"
    else:
        fit = "does not fit"
    if ice is None:
        fit = "not run"
    print(
        f"| {label} | {design['input']['planes']} | {reads} of {design['input']['features']} | "
        f"{100 * ev['accuracy']:.2f} % | {xil['luts']} ({est['luts']}) | {xil['ffs']} | "
        f"{ice['luts'] if ice else 'not run'} | {fit} | {sim} | {took(f'{d}.xilinx.time')} | {took(f'{d}.ice40.time')} | "
        f"{took(f'{d}.sim.time')} |"
    )
