#!/usr/bin/env python3
"""Prints the Markdown table of a pruning search from the report `cbnn prune --report` wrote.

Usage: python3 scripts/prune_table.py REPORT.json
The rows are the baseline and every retrained candidate in search order, with the validation
drop and its paired standard error, and a line with the chosen model and the search's seconds.
"""
import json
import sys


def planes(p):
    if p == list(range(7, -1, -1)):
        return "[7..0]"
    return "[" + ", ".join(str(x) for x in p) + "]"


def arch(s):
    return s["arch"] or ",".join(str(w) for w in s["hidden"])


r = json.loads(open(sys.argv[1]).read())
base = r["baseline"]
print("| phase | planes | arch | size (bits) | smaller | validation | drop ± se (pp) | test | seconds | verdict |")
print("|---|---|---|---|---|---|---|---|---|---|")
print(
    f"| baseline | {planes(base['planes'])} | {arch(base)} | {base['size_bits']} | 1.00x | "
    f"{100 * base['val_accuracy']:.2f} % | | {100 * base['test_accuracy']:.2f} % | | |"
)
for c in r["candidates"]:
    drop = 100 * (base["val_accuracy"] - c["val_accuracy"])
    print(
        f"| {c['phase']} | {planes(c['planes'])} | {arch(c)} | {c['size_bits']} | "
        f"{base['size_bits'] / c['size_bits']:.2f}x | {100 * c['val_accuracy']:.2f} % | "
        f"{drop:.2f} ± {100 * c.get('drop_se', 0.0):.2f} | {100 * c['test_accuracy']:.2f} % | "
        f"{c['seconds']:.0f} | {'accepted' if c['accepted'] else 'rejected'} |"
    )
ch = r["chosen"]
print()
print(
    f"chosen: planes {planes(ch['planes'])}, {arch(ch)}, {r['size_reduction']:.2f}x smaller, "
    f"test {100 * base['test_accuracy']:.2f} % -> {100 * ch['test_accuracy']:.2f} % "
    f"({100 * (base['test_accuracy'] - ch['test_accuracy']):.2f} pp), "
    f"noise margin {r['config'].get('noise_margin', 0)}, {r['seconds']:.0f} s"
)
