#!/usr/bin/env python3
"""Prints a Markdown table of the co-simulation runs written by scripts/cosim.sh.

Usage: python3 scripts/cosim_table.py LABEL=OUT_DIR [LABEL=OUT_DIR ...]
"""
import json
import pathlib
import sys

print("| model | folding (PE,SIMD per layer) | cycles/image | latency | schedule | images | mismatches | accuracy | sim images/s | sim Mcycles/s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for arg in sys.argv[1:]:
    label, out = arg.split("=", 1)
    for fold in sorted(pathlib.Path(out).glob("fold*")):
        design = json.loads((fold / "design.json").read_text())
        folding = " ".join(
            f"{l['name']}:{'full' if l['pe'] == l['outputs'] and l['simd'] == l['inputs'] else str(l['pe']) + ',' + str(l['simd'])}"
            + (f",{l['pipe']}" if l.get("pipe") else "")
            for l in design["layers"]
        )
        for seed in ["free", "1", "2", "3"]:
            path = fold / f"sim-{seed}.json"
            if not path.exists():
                continue
            r = json.loads(path.read_text())
            print(
                f"| {label} | {folding} | {design['initiation_interval']} | {design['latency']} | "
                f"{'free-running' if seed == 'free' else 'stall seed ' + seed} | {r['images']} | "
                f"{r['images'] - r['matched']} | {100 * r['accuracy']:.2f} % | {r['images_per_second']:.0f} | "
                f"{r['cycles_per_second'] / 1e6:.2f} |"
            )
