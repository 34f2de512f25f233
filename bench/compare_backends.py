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
import statistics
import sys


def main(path, backend, reference, layout="NHWC", saliency="sigmoid"):
    with open(path) as f:
        data = json.load(f)
    reps = collections.defaultdict(list)
    for b in data["benchmarks"]:
        if b.get("run_type") == "iteration":
            reps[b["run_name"]].append(b["real_time"])
    if not reps:
        sys.exit("compare_backends.py: %s has no repetitions (run with "
                 "--benchmark_report_aggregates_only=false)" % path)
    rows = collections.defaultdict(dict)
    verbs = []
    for name, times in reps.items():
        parts = name.split("/")
        if len(parts) < 5 or parts[2] != layout or parts[3] != saliency:
            continue
        verb, bk, shape = parts[0], parts[1], parts[4]
        if verb not in verbs:
            verbs.append(verb)
        rows[shape][(verb, bk)] = (statistics.median(times), min(times), len(times))
    order = ["compute_weights", "sample", "sample_inverse", "sample_backward",
             "sample_inverse_backward", "compute_weights_backward", "round_trip"]
    verbs.sort(key=lambda v: (order.index(v) if v in order else len(order), v))
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
