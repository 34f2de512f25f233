#!/usr/bin/env python3
"""A/B table of ssb_bench_cuda JSON runs of several builds on one GPU (tests/device/ab.sh).

    python3 bench/cuda_ab.py BASE.json OTHER.json... [--out table.md]

One row per benchmark (medians where the runs have repetitions), one column per file: its time in
microseconds and, for every file after the first, that time / BASE's time. Files are named
NAME.json or NAME_ROUND.json (ab.sh); NAME heads the column. A last line per column gives the
range of its ratios for each verb.
"""
import json
import os
import sys

from cuda_summary import emit, split_out


def load(path):
    times = {}
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"]).replace("/manual_time", "")
        unit = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "us")]
        times[name] = b["real_time"] * unit
    return times


def main():
    args, out = split_out(sys.argv[1:])
    if len(args) < 2:
        sys.exit(__doc__)
    names = [os.path.splitext(os.path.basename(a))[0] for a in args]
    runs = [load(a) for a in args]
    base = runs[0]
    lines = ["| benchmark | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    spans = [{} for _ in runs]
    for key in sorted(base):
        cells = ["%.1f" % base[key]]
        for i, run in enumerate(runs[1:], start=1):
            if key not in run:
                cells.append("")
                continue
            r = run[key] / base[key] if base[key] else float("nan")
            cells.append("%.1f (%.2f)" % (run[key], r))
            verb = key.split("/")[0]
            lo, hi = spans[i].get(verb, (r, r))
            spans[i][verb] = (min(lo, r), max(hi, r))
        lines.append("| %s | %s |" % (key.replace("/sigmoid/", "/"), " | ".join(cells)))
    lines.append("")
    for i in range(1, len(runs)):
        lines.append("%s / %s: %s" % (names[i], names[0], "; ".join(
            "%s %.2f-%.2fx" % (verb, lo, hi) for verb, (lo, hi) in sorted(spans[i].items()))))
    emit(lines, out)


if __name__ == "__main__":
    main()
