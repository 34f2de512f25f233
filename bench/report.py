#!/usr/bin/env python3
"""Turns ssb_bench JSON output into a markdown report (stdout, and --out FILE).

    python3 bench/report.py RESULTS.json [MORE.json ...] [--out bench/results/REPORT.md]
                            [--backend openmp2] [--blas openblas2] [--saliency sigmoid]
    python3 bench/report.py --annotate RESULTS.json key=value ...   (adds to the JSON context)
    python3 bench/report.py RESULTS.json ... --disturbed    (prints a --benchmark_filter matching
                                                             the results of the disturbed shapes)

Several files are merged in order: a later file's result replaces an earlier one's, so a subset
rerun (--benchmark_filter=...) can be laid over a full run. Medians are taken from the 'median'
aggregates, or computed from the repetitions when the file has no aggregates. Benchmark names are
family/backend/layout/saliency/shape[/...] (bench/problem.hpp). Python 3 standard library only.
"""
import json
import sys

UNIT_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
VERBS = ["compute_weights", "sample", "sample_inverse", "sample_backward", "sample_backward_dx",
         "sample_backward_dw", "sample_inverse_backward", "compute_weights_backward", "round_trip"]
LAYOUT_VERBS = ["sample", "sample_inverse", "sample_backward", "sample_inverse_backward",
                "round_trip"]
COUNTERS = ["bytes_per_second", "pct_of_bw_ref", "bw_ref_GBps", "MB_per_call", "reduce_MB",
            "expand_MB", "cached_GBps"]


def median(values):
    v = sorted(values)
    n = len(v)
    return None if n == 0 else (v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2]))


def load(paths):
    """-> (results {key: {ms, counters...}}, shape order, contexts, errors)."""
    results, order, contexts, errors = {}, [], [], {}
    for path in paths:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit("report.py: cannot read %s: %s" % (path, e))
        contexts.append((path, data.get("context", {})))
        medians, reps = {}, {}
        for b in data.get("benchmarks", []):
            parts = b.get("run_name", b.get("name", "")).split("/")
            if len(parts) < 5:
                continue
            key = tuple(parts[:5])
            if key[4] not in order:
                order.append(key[4])
            if b.get("error_occurred"):
                errors[key] = b.get("error_message", "error")
                continue
            try:
                entry = {"ms": float(b["real_time"]) * UNIT_MS[b.get("time_unit", "ns")]}
            except (KeyError, ValueError):
                continue
            for c in COUNTERS:
                if isinstance(b.get(c), (int, float)):
                    entry[c] = float(b[c])
            if b.get("run_type") == "aggregate":
                if b.get("aggregate_name") == "median":
                    medians.setdefault(key, {}).update(entry)
                elif b.get("aggregate_name") == "cv":  # real_time is stddev / mean here
                    medians.setdefault(key, {})["cv"] = float(b["real_time"])
            else:
                reps.setdefault(key, []).append(entry)
        for key, entries in reps.items():
            if "ms" not in medians.get(key, {}):
                medians[key] = {k: median([e[k] for e in entries if k in e])
                                for k in entries[0]}
        for key, entry in medians.items():
            if "ms" in entry:
                results[key] = entry
                errors.pop(key, None)
    return results, order, contexts, errors


class Report:
    def __init__(self, results, backend, blas, saliency):
        self.r, self.backend, self.blas, self.sal = results, backend, blas, saliency

    def get(self, family, shape, layout="NHWC", backend=None, sal=None):
        return self.r.get((family, backend or self.backend, layout, sal or self.sal, shape))

    def ms(self, *args, **kw):
        e = self.get(*args, **kw)
        return None if e is None else e["ms"]

    def bw(self, ref, backend, shape):
        """GB/s of the bw_reduce / bw_expand benchmark."""
        e = self.r.get(("bw_" + ref, backend, "raw", "none", shape))
        return None if e is None or "bytes_per_second" not in e else e["bytes_per_second"] * 1e-9

    def pct(self, family, shape, layout="NHWC", backend=None, sal=None):
        """Percent of the bandwidth reference: the result's pct_of_bw_ref counter (against a
        reference measured within 2 s of it); without one, recomputed from its reduce_MB and
        expand_MB and the bw_* benchmarks of the same backend."""
        backend = backend or self.backend
        e = self.get(family, shape, layout, backend, sal)
        if e is None:
            return None
        if "pct_of_bw_ref" in e:
            return e["pct_of_bw_ref"]
        if family.startswith("dense_blas"):
            backend = self.backend  # same thread count as the OpenMP backend
        red, exp = self.bw("reduce", backend, shape), self.bw("expand", backend, shape)
        if red and exp and "reduce_MB" in e and "expand_MB" in e and e["ms"] > 0:
            ref_s = e["reduce_MB"] * 1e-3 / red + e["expand_MB"] * 1e-3 / exp
            return 100.0 * ref_s / (e["ms"] * 1e-3)
        return None

    def disturbed(self, shapes):
        """[(shape, reason)] for shapes whose key timings look disturbed: a key result (bandwidth
        references, sample, sample_inverse) varies by over 10% across repetitions, the threaded
        bandwidth reference is not faster than the serial one, or it disagrees by over 25% with
        the in-binary measurement taken at another moment."""
        out = []
        for shape in shapes:
            reasons = []
            keys = [("bw_reduce", self.backend, "raw", "none", shape),
                    ("bw_expand", self.backend, "raw", "none", shape),
                    ("sample", self.backend, "NHWC", self.sal, shape),
                    ("sample_inverse", self.backend, "NHWC", self.sal, shape)]
            for k in keys:
                e = self.r.get(k)
                if e and e.get("cv") is not None and e["cv"] > 0.10:
                    reasons.append("%s varies by %.0f%%" % (k[0], 100 * e["cv"]))
            for ref in ("reduce", "expand"):
                mine, serial = self.bw(ref, self.backend, shape), self.bw(ref, "serial", shape)
                if mine and serial and self.backend != "serial" and mine < 1.1 * serial:
                    reasons.append("bw_%s %s (%.3g GB/s) is not faster than serial (%.3g GB/s)" % (
                        ref, self.backend, mine, serial))
                e = self.r.get(("bw_" + ref, self.backend, "raw", "none", shape))
                if mine and e and e.get("cached_GBps") and not (
                        0.75 < e["cached_GBps"] / mine < 1.0 / 0.75):
                    reasons.append("bw_%s: %.3g GB/s here, %.3g GB/s in-binary" % (
                        ref, mine, e["cached_GBps"]))
            if reasons:
                out.append((shape, "; ".join(reasons)))
        return out


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt(v, digits=3, suffix=""):
    if v is None:
        return "–"
    if abs(v) >= 10 ** digits:
        return "%.0f%s" % (v, suffix)
    return "%.*g%s" % (digits, v, suffix)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def annotate(path, pairs):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("report.py: cannot read %s: %s" % (path, e))
    for pair in pairs:
        key, _, value = pair.partition("=")
        data.setdefault("context", {})[key] = value
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    return 0


def main(argv):
    if argv[:1] == ["--annotate"] and len(argv) >= 2:
        return annotate(argv[1], argv[2:])
    paths, opts = [], {"--out": None, "--backend": None, "--blas": None, "--saliency": "sigmoid"}
    disturbed_only = False
    it = iter(argv)
    for a in it:
        if a in opts:
            opts[a] = next(it, None)
            if opts[a] is None:
                sys.exit("report.py: %s needs a value" % a)
        elif a == "--disturbed":
            disturbed_only = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            paths.append(a)
    if not paths:
        sys.exit(__doc__)
    out_path, backend, blas, sal = (opts["--out"], opts["--backend"], opts["--blas"],
                                    opts["--saliency"])
    results, order, contexts, errors = load(paths)
    # The naive dense loop's one-image names (..._n1) belong to their full-batch shape.
    bases = {s.rsplit("_n", 1)[0] for s in order if not s.endswith("_n1")}
    shapes = [s for s in order if not (s.endswith("_n1") and s.rsplit("_n", 1)[0] in bases)]
    ctx = contexts[-1][1]
    threads = ctx.get("ssb_threads", "2")
    backend = backend or ctx.get("ssb_primary_backend", "openmp" + threads)
    blas = blas or "openblas" + threads
    rep = Report(results, backend, blas, sal)
    disturbed = rep.disturbed(shapes)
    if disturbed_only:  # a --benchmark_filter for every result of the disturbed shapes
        names = ["/".join(k) for k in list(results) + list(errors)
                 if k[4] in {s for s, _ in disturbed} or
                 k[4].rsplit("_n", 1)[0] in {s.rsplit("_n", 1)[0] for s, _ in disturbed}]
        if names:
            print("^(%s)(/|$)" % "|".join(sorted(set(names))))
        return 0
    md = ["# ssbnet benchmark report", ""]
    md += ["Backend `%s`, dense baseline `%s` (cblas_sgemm), saliency `%s`, float32; medians of "
           "the repetitions. Sources: %s." % (backend, blas, sal,
                                              ", ".join("`%s`" % p for p in paths)), ""]

    # Main table.
    rows, checks = [], {k: [] for k in ("bw_s", "bw_i", "speed_in", "speed_coco", "bwd", "wts",
                                         "layout")}
    for shape in shapes:
        for layout in ("NHWC", "NCHW"):
            s = rep.ms("sample", shape, layout)
            d = rep.ms("dense_blas_sample", shape, layout, backend=blas)
            if s is None and d is None:
                continue
            speed = ratio(d, s)
            p_s, p_i = rep.pct("sample", shape, layout), rep.pct("sample_inverse", shape, layout)
            bwd = ratio(rep.ms("sample_backward", shape, layout), s)
            cw, cwb = rep.ms("compute_weights", shape, layout), rep.ms(
                "compute_weights_backward", shape, layout)
            wts = None if cw is None or cwb is None or not s else 100.0 * (cw + cwb) / s
            lay = ratio(s, rep.ms("sample", shape, "NHWC")) if layout == "NCHW" else None
            lay_i = (ratio(rep.ms("sample_inverse", shape, "NCHW"),
                           rep.ms("sample_inverse", shape, "NHWC")) if layout == "NCHW" else None)
            rows.append([shape, layout, fmt(s), fmt(d), fmt(speed, 3, "x"), fmt(p_s, 3, "%"),
                         fmt(p_i, 3, "%"), fmt(bwd), fmt(wts, 2, "%"),
                         "" if layout == "NHWC" else "%s / %s" % (fmt(lay), fmt(lay_i))])
            if layout == "NHWC":
                checks["bw_s"].append((shape, p_s))
                checks["bw_i"].append((shape, p_i))
                if shape.startswith("imagenet"):
                    checks["speed_in"].append((shape, speed))
                if shape.startswith("coco"):
                    checks["speed_coco"].append((shape, speed))
                checks["bwd"].append((shape, bwd))
                checks["wts"].append((shape, wts))
                for verb in LAYOUT_VERBS:
                    checks["layout"].append((shape + " " + verb, ratio(
                        rep.ms(verb, shape, "NCHW"), rep.ms(verb, shape, "NHWC"))))
    md += ["## Per shape", ""]
    md += table(["shape", "layout", "sample ms", "dense BLAS ms", "speed-up", "sample % bw",
                 "inverse % bw", "bwd / fwd", "(cw + cw bwd) / sample", "NCHW / NHWC (sample / "
                 "inverse)"], rows)
    md += ["", "speed-up = dense BLAS / sample; % bw = percent of the bandwidth reference "
           "(bench/problem.hpp); bwd / fwd = sample_backward (d_x and d_weights) / sample; "
           "cw = compute_weights.", ""]

    # Targets.
    def verdict(name, items, ok):
        measured = [(s, v) for s, v in items if v is not None]
        if not measured:
            return [name, "n/a", "not measured", ""]
        failed = [(s, v) for s, v in measured if not ok(v)]
        # The worst value is the smallest for ">=" targets, the largest for "<=" ones.
        worst = (max if ok(-1e300) else min)(measured, key=lambda sv: sv[1])
        status = "met" if not failed and len(measured) == len(items) else (
            "MISSED" if failed else "met (partly measured)")
        return [name, status, "%d / %d" % (len(measured) - len(failed), len(items)),
                "%s (%s)" % (fmt(worst[1]), worst[0])]

    md += ["## Targets (NHWC, `%s`)" % backend, ""]
    md += table(["target", "status", "shapes passing", "worst (shape)"], [
        verdict("sample >= 80% of bw reference", checks["bw_s"], lambda v: v >= 80),
        verdict("sample_inverse >= 80% of bw reference", checks["bw_i"], lambda v: v >= 80),
        verdict("sample >= 6x dense BLAS (ImageNet)", checks["speed_in"], lambda v: v >= 6),
        verdict("sample >= 12x dense BLAS (COCO)", checks["speed_coco"], lambda v: v >= 12),
        verdict("sample_backward <= 2.5x sample", checks["bwd"], lambda v: v <= 2.5),
        verdict("compute_weights + backward <= 5% of sample", checks["wts"], lambda v: v <= 5),
        verdict("NCHW <= 1.5x NHWC (%s)" % ", ".join(LAYOUT_VERBS), checks["layout"],
                lambda v: v <= 1.5)])
    md += [""]

    # Every verb.
    for title, value in (("time, ms", lambda v, s: rep.ms(v, s)),
                         ("percent of the bandwidth reference", lambda v, s: rep.pct(v, s))):
        rows = [[shape] + [fmt(value(v, shape)) for v in VERBS] for shape in shapes
                if any(rep.get(v, shape) for v in VERBS)]
        if rows:
            md += ["## Every verb, NHWC, `%s`: %s" % (backend, title), ""]
            md += table(["shape"] + VERBS, rows) + [""]

    # Backends and dense forms.
    others = sorted({k[1] for k in results if k[0] in VERBS and k[1] != backend})
    for other in others:
        rows = []
        for shape in shapes:
            cells = []
            for v in ("sample", "sample_inverse", "sample_backward", "round_trip"):
                t = rep.ms(v, shape, backend=other)
                cells += [fmt(t), fmt(ratio(t, rep.ms(v, shape)), 3, "x")]
            if any(c != "–" for c in cells):
                rows.append([shape] + cells)
        if rows:
            md += ["## `%s` (ms, and its time / `%s`), NHWC" % (other, backend), ""]
            md += table(["shape", "sample", "", "inverse", "", "backward", "", "round trip", ""],
                        rows) + [""]
    rows = []
    for shape in shapes:
        n1 = shape.rsplit("_n", 1)[0] + "_n1"
        naive = rep.ms("dense_naive_sample", n1, backend="serial")
        batch = int(shape.rsplit("_n", 1)[1]) if "_n" in shape else 1
        cells = [fmt(rep.ms("dense_blas_sample", shape, "NHWC", backend=blas)),
                 fmt(rep.ms("dense_blas_sample", shape, "NCHW", backend=blas)),
                 fmt(rep.ms("dense_blas_inverse", shape, "NHWC", backend=blas)),
                 fmt(naive), fmt(None if naive is None else naive * batch),
                 fmt(ratio(None if naive is None else naive * batch, rep.ms("sample", shape)),
                     3, "x")]
        if any(c != "–" for c in cells):
            rows.append([shape] + cells)
    if rows:
        md += ["## Dense forms (ms)", ""]
        md += table(["shape", "BLAS sample NHWC", "BLAS sample NCHW", "BLAS inverse NHWC",
                     "naive, 1 image", "naive x batch (est.)", "naive est. / sample"], rows)
        md += ["", "The naive dense loop runs on one image (`_n1`); 'x batch' scales it.", ""]

    # Bandwidth references.
    bw_backends = sorted({k[1] for k in results if k[0] in ("bw_reduce", "bw_expand")})
    rows = []
    for shape in shapes:
        cells = []
        for b in bw_backends:
            for ref in ("reduce", "expand"):
                e = results.get(("bw_" + ref, b, "raw", "none", shape))
                cells.append(fmt(rep.bw(ref, b, shape)) + (
                    " (%s)" % fmt(e["cached_GBps"]) if e and "cached_GBps" in e else ""))
        if any(not c.startswith("–") for c in cells):
            rows.append([shape] + cells)
    if rows:
        md += ["## Bandwidth references, GB/s", "", "The bw_* benchmarks, once per shape; in "
               "parentheses the in-binary measurement the percentages use, re-taken every 2 s "
               "next to the results (its value at the bw_* benchmark).", ""]
        md += table(["shape"] + ["%s %s" % (b, r) for b in bw_backends
                                 for r in ("reduce", "expand")], rows) + [""]

    if disturbed:
        md += ["## Disturbed shapes", "", "These shapes' timings look disturbed (other processes, "
               "most likely); rerun them, e.g. `bench/report.sh -n rerun -- "
               "--benchmark_filter='%s'`, and pass both JSON files to report.py:" % "|".join(
                   s for s, _ in disturbed), ""]
        md += ["- `%s`: %s" % (s, why) for s, why in disturbed] + [""]
    noisy = sorted(((e["cv"], "/".join(k)) for k, e in results.items()
                    if e.get("cv") is not None and e["cv"] > 0.10), reverse=True)
    md += ["## Noise", ""]
    md += ["%d of %d results have a coefficient of variation over 10%% across repetitions%s" % (
        len(noisy), len(results), ":" if noisy else ".")]
    md += ["- `%s`: %.0f%%" % (name, 100 * cv) for cv, name in noisy[:15]]
    if len(noisy) > 15:
        md += ["- ... and %d more" % (len(noisy) - 15)]
    for path, c in contexts:
        try:  # written by report.sh: CPU time of other processes during the run, in percent
            others = float(c.get("other_processes_cpu_pct", "nan"))
        except ValueError:
            others = float("nan")
        load_avg = c.get("load_avg")
        if others == others and others > 5:
            md += ["", "**Warning**: other processes used %.0f%% of the CPU time during `%s`; "
                   "timings with several threads suffer most." % (others, path)]
        elif others != others and isinstance(load_avg, list) and load_avg and load_avg[0] > 1:
            md += ["", "**Warning**: `%s` started with a 1-minute load average of %.2f: other "
                   "processes may have been running." % (path, load_avg[0])]
    md += [""]
    if errors:
        md += ["## Errors", ""] + ["- `%s`: %s" % ("/".join(k), m)
                                   for k, m in sorted(errors.items())] + [""]
    md += ["## Context", ""]
    for path, c in contexts:
        md += ["`%s`:" % path, ""]
        keys = ["date", "host_name", "cpu_model", "num_cpus", "mhz_per_cpu", "load_avg",
                "ssb_threads", "ssb_backends", "compiler", "cxx_flags", "build_type",
                "libbenchmark_version", "library_build_type", "openmp", "openblas_config",
                "openblas_corename", "openblas_threads", "openblas_parallel",
                "env_OPENBLAS_CORETYPE", "env_OMP_NUM_THREADS", "env_OMP_PROC_BIND", "kernel",
                "cpu_busy_before_run", "other_processes_cpu_pct", "run_seconds",
                "cache_sizes_sysconf",
                "git_commit"]
        for k in keys + sorted(k for k in c if k not in keys and k != "caches"):
            if k in c:
                md += ["- %s: %s" % (k, c[k])]
        caches = c.get("caches")
        if caches:
            md += ["- caches: " + ", ".join("L%s %s %dK x%s" % (x.get("level"), x.get("type"),
                                                                x.get("size", 0) // 1024,
                                                                x.get("num_sharing"))
                                            for x in caches)]
        md += [""]
    text = "\n".join(md)
    print(text)
    if out_path:
        with open(out_path, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
