#!/usr/bin/env python3
"""Summary table of an ssb_bench_cuda JSON run (bench/bench_cuda.cu), one row per shape.

    python3 bench/cuda_summary.py results.json [--out table.md]

Columns (medians when the run has repetitions, else the single timing; microseconds):
  sample, inverse      ssb::cuda sample / sample_inverse, float32 NHWC
  GB/s, %copy, %peak   sample's bytes/s (bytes model of bench/traffic.cpp), as a share of the
                       device-to-device copy of the same shape and of the theoretical DRAM peak
  inv %peak            the same share for sample_inverse
  dense                cuBLAS dense form (two batched GEMMs); "x" = dense / sample
  bwd/fwd              sample_backward (d_x and d_weights) / sample
  weights %            (compute_weights + compute_weights_backward) / sample, in percent
  NCHW/NHWC            NCHW / NHWC time of sample, sample_inverse and sample_backward
  half                 sample with __half maps / float sample
The header line adds the time of one empty kernel launch (the empty_kernel rows), the floor of
every event-timed call, and the calls per timing (ssb_bench_cuda --ssb_calls: with more than one,
every figure is the GPU's time per call of back-to-back calls).
"""
import json
import sys


def split_out(args):
    """args without "--out FILE", and FILE (None without it)."""
    args = list(args)
    out = None
    if "--out" in args:
        i = args.index("--out")
        out = args[i + 1]
        del args[i:i + 2]
    return args, out


def emit(lines, out):
    """Prints the lines, and writes them to `out` too unless it is None."""
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if out:
        open(out, "w").write(text)


def main():
    args, out = split_out(sys.argv[1:])
    if len(args) != 1:
        sys.exit(__doc__)
    data = json.load(open(args[0]))
    context = data.get("context", {})
    peak = float(context.get("gpu_peak_GBps", "0") or 0) * 1e9
    times, rates = {}, {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        # verb/cuda/layout/saliency/shape[/manual_time]
        parts = [p for p in b.get("run_name", b["name"]).split("/") if p != "manual_time"]
        verb, layout, shape = parts[0], parts[2], parts[4]
        key = (verb, layout, shape)
        unit = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "us")]
        times[key] = b["real_time"] * unit
        rates[key] = b.get("bytes_per_second", 0.0)
    shapes = sorted({k[2] for k in times}, key=lambda s: (s.split("_")[0], s))

    def t(verb, shape, layout="NHWC"):
        return times.get((verb, layout, shape))

    def ratio(a, b):
        return "" if a is None or b is None or b == 0 else "%.2f" % (a / b)

    empty = sorted(v for k, v in times.items() if k[0] == "empty_kernel")
    floor = ", one empty kernel launch %.1f us (median over shapes)" % empty[len(empty) // 2] if empty else ""
    calls = context.get("calls_per_timing", "1")
    floor += ", %s call%s per timing" % (calls, "" if calls == "1" else "s back to back")
    lines = ["GPU: %s, theoretical DRAM peak %.0f GB/s%s" % (context.get("gpu", "?"), peak / 1e9, floor), "",
             "| shape | sample us | inverse us | GB/s | %copy | %peak | inv %peak | dense us | x dense |"
             " bwd/fwd | weights % | NCHW/NHWC (smp / inv / bwd) | half/float |",
             "|---|" + "---|" * 12]
    for s in shapes:
        smp, inv = t("sample", s), t("sample_inverse", s)
        rate = rates.get(("sample", "NHWC", s), 0.0)
        inv_rate = rates.get(("sample_inverse", "NHWC", s), 0.0)
        copy = rates.get(("bw_copy", "NHWC", s), 0.0)
        dense = t("dense_cublas_sample", s)
        cw, cwb = t("compute_weights", s), t("compute_weights_backward", s)
        weights = "" if None in (cw, cwb, smp) else "%.1f" % (100 * (cw + cwb) / smp)
        cells = [s,
                 "%.1f" % smp if smp else "", "%.1f" % inv if inv else "",
                 "%.0f" % (rate / 1e9) if rate else "",
                 "%.0f" % (100 * rate / copy) if rate and copy else "",
                 "%.0f" % (100 * rate / peak) if rate and peak else "",
                 "%.0f" % (100 * inv_rate / peak) if inv_rate and peak else "",
                 "%.1f" % dense if dense else "", ratio(dense, smp),
                 ratio(t("sample_backward", s), smp), weights,
                 " / ".join(ratio(t(v, s, "NCHW"), t(v, s)) or "-"
                            for v in ("sample", "sample_inverse", "sample_backward")),
                 ratio(t("sample_half", s), smp)]
        lines.append("| " + " | ".join(cells) + " |")
    emit(lines, out)


if __name__ == "__main__":
    main()
