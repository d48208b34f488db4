#!/usr/bin/env python3
"""Prints the Markdown table of a pruning search from the report `cbnn prune --report` wrote.

Usage: python3 scripts/prune_table.py REPORT.json
The rows are the baseline and every retrained candidate in search order, with the validation
drop and its paired standard error, a line with the chosen model and the search's seconds,
and a line on the search as jobs: how many candidates were trained, their seconds, and the
critical path, the wall time the search would take with one worker per job. The search hands
its executor one sequence of candidates at a time (a phase, or in the widths phase one plane
set); with a worker each, a sequence takes as long as its longest job, and everything that is
not training (the sensitivity ranking, the evaluations) stays as it was.
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

# Sequences: consecutive candidates of one phase and, but in the planes phase, one plane set.
seqs = []
for c in r["candidates"]:
    key = (c["phase"], None if c["phase"] == "planes" else tuple(c["planes"]))
    if seqs and seqs[-1][0] == key:
        seqs[-1][1].append(c["seconds"])
    else:
        seqs.append((key, [c["seconds"]]))
times = sorted(c["seconds"] for c in r["candidates"])
if times:
    trained = sum(times)
    other = max(r["seconds"] - trained, 0.0)
    critical = other + sum(max(t) for _, t in seqs)
    print(
        f"jobs: {len(times)} candidates in {len(seqs)} sequences, {times[0]:.0f} / "
        f"{times[len(times) // 2]:.0f} / {times[-1]:.0f} s each (min / median / max), "
        f"{trained:.0f} s of training, {other:.0f} s besides; critical path with one worker "
        f"per job {critical:.0f} s"
    )
