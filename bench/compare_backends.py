#!/usr/bin/env python3
"""Time ratios of two backends from one ssb_bench JSON run with repetitions (both the median and
the minimum of each benchmark's repetitions), as a markdown table on stdout.

    python3 bench/compare_backends.py bench/results/kokkos.json kokkos_openmp2 openmp2

Meant for runs with --benchmark_repetitions=N --benchmark_enable_random_interleaving=true
--benchmark_report_aggregates_only=false: the two backends run the same kernel bodies, and with
interleaved repetitions a burst of load hits both alike; the minimum is the least disturbed
timing of each, the median shows how much the machine moved.
"""
import collections
import json
import sys

from report import UNIT_MS, VERBS, median


def main(path, backend, reference, layout="NHWC", saliency="sigmoid"):
    with open(path) as f:
        data = json.load(f)
    reps = collections.defaultdict(list)
    for b in data["benchmarks"]:
        if b.get("run_type") == "iteration" and not b.get("error_occurred"):
            reps[b["run_name"]].append(float(b["real_time"]) * UNIT_MS[b.get("time_unit", "ns")])
    if not reps:
        sys.exit("compare_backends.py: %s has no repetitions (run with "
                 "--benchmark_report_aggregates_only=false)" % path)
    rows = collections.defaultdict(dict)
    found = set()
    for name, times in reps.items():
        parts = name.split("/")
        if len(parts) < 5 or parts[2] != layout or parts[3] != saliency:
            continue
        verb, bk, shape = parts[0], parts[1], parts[4]
        found.add(verb)
        rows[shape][(verb, bk)] = (median(times), min(times))
    verbs = [v for v in VERBS if v in found]
    out = ["%s / %s time, %s %s: median / minimum of the repetitions" %
           (backend, reference, layout, saliency), "",
           "| shape | " + " | ".join(verbs) + " |", "|---|" + "---|" * len(verbs)]
    ratios_med, ratios_min = [], []
    for shape in sorted(rows):
        cells = []
        for verb in verbs:
            a, b = rows[shape].get((verb, backend)), rows[shape].get((verb, reference))
            if not a or not b:
                cells.append("–")
                continue
            ratios_med.append((a[0] / b[0], verb, shape))
            ratios_min.append((a[1] / b[1], verb, shape))
            cells.append("%.2fx / %.2fx" % (a[0] / b[0], a[1] / b[1]))
        out.append("| %s | %s |" % (shape, " | ".join(cells)))
    if ratios_med:
        out += ["", "Largest ratio of the medians: %.2fx (%s, %s); of the minima: %.2fx (%s, %s). "
                "Pairs over 1.2x: %d of %d by the medians, %d by the minima." % (
                    *max(ratios_med), *max(ratios_min), sum(r > 1.2 for r, _, _ in ratios_med),
                    len(ratios_med), sum(r > 1.2 for r, _, _ in ratios_min))]
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
