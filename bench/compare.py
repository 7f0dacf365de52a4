#!/usr/bin/python3
"""compare.py -- runs Nearly, native hnswlib and FAISS on the SAME files in
the SAME run (each library in its own process, so peak RSS is per library)
and prints a side-by-side table with ratios.

  bench/compare.sh --data DIR [--ef 10,20,40,80,160] [--threads 2] [--m 16]
                   [--ef-construction 200] [--metric cosine|dot|l2] [--k 10]
                   [--limit-queries N] [--repeat 1] [--rounds 1]
                   [--libs nearly,hnswlib,faiss] [--target-recall 0.95]
                   [--json FILE] [--keep DIR]

--rounds R runs every library R times, interleaved (nearly, hnswlib, faiss,
nearly, ...), and keeps per library the best QPS / latency / build time: on
a shared, noisy machine that is fairer than one pass.

Ratios are Nearly / peer.  "QPS at recall R" is interpolated linearly in
(recall, log QPS) between the two ef values that bracket R; "first ef >= R"
is the measured QPS at the first ef whose recall reaches R.
"""
import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"


def infer_metric(d):
    base = os.path.basename(os.path.normpath(d))

    def word(w):
        w = w.lower()
        if w.startswith(("l2", "euclid")):
            return "l2"
        if w.startswith(("cos", "angular", "ip")):
            return "cosine"
        if w.startswith("dot"):
            return "dot"
        return None

    if "-" in base:
        m = word(base.rsplit("-", 1)[1])
        if m:
            return m
    try:
        with open(os.path.join(d, "meta.json")) as f:
            m = json.load(f).get("metric")
            return word(m) if isinstance(m, str) else None
    except (OSError, ValueError):
        return None


def build_tools(libs):
    if "nearly" in libs:
        subprocess.run(["make", "-j2", "--no-print-directory", "build/nearly"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    if "hnswlib" in libs:
        src = os.path.join(ROOT, "bench", "hnswlib_bench.cpp")
        exe = os.path.join(ROOT, "build", "hnswlib_bench")
        if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
            os.makedirs(os.path.dirname(exe), exist_ok=True)
            cmd = ["g++", "-O3", "-march=native", "-std=c++17", "-pthread", src, "-o", exe]
            print("compare: building hnswlib bench:", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)


def lib_command(lib, common, json_path):
    if lib == "nearly":
        return [os.path.join(ROOT, "build", "nearly"), "bench"] + common + ["--json", json_path]
    if lib == "hnswlib":
        return [os.path.join(ROOT, "build", "hnswlib_bench")] + common + ["--json", json_path]
    if lib == "faiss":
        return [PY, os.path.join(ROOT, "bench", "faiss_bench.py")] + common + ["--json", json_path]
    raise ValueError(lib)


def merge(best, new):
    """Keeps, per ef, the best QPS and latencies of several runs."""
    if best is None:
        return new
    best["build_s"] = min(best["build_s"], new["build_s"])
    if "build_cpu_s" in best and "build_cpu_s" in new:
        best["build_cpu_s"] = min(best["build_cpu_s"], new["build_cpu_s"])
    best["peak_rss_bytes"] = min(best["peak_rss_bytes"], new["peak_rss_bytes"])
    for b, r in zip(best["results"], new["results"]):
        b["qps_1t"] = max(b["qps_1t"], r["qps_1t"])
        b["qps_nt"] = max(b["qps_nt"], r["qps_nt"])
        b["qps_1t_cpu"] = max(b.get("qps_1t_cpu", 0), r.get("qps_1t_cpu", 0))
        b["p50_us"] = min(b["p50_us"], r["p50_us"])
        b["p99_us"] = min(b["p99_us"], r["p99_us"])
    return best


def at_recall(res, target, key):
    """(interpolated QPS at target recall, first ef reaching it, QPS there)."""
    pts = sorted(((r["recall"], r[key], r["ef"]) for r in res), key=lambda t: t[2])
    first = next(((ef, q) for rec, q, ef in pts if rec >= target), (None, None))
    interp = None
    by_recall = sorted(pts)
    for (r0, q0, _), (r1, q1, _) in zip(by_recall, by_recall[1:]):
        if r0 <= target <= r1 and q0 > 0 and q1 > 0:
            if r1 == r0:
                interp = max(q0, q1)
            else:
                t = (target - r0) / (r1 - r0)
                interp = math.exp(math.log(q0) + t * (math.log(q1) - math.log(q0)))
            break
    if interp is None and by_recall and by_recall[0][0] >= target:
        interp = by_recall[0][1]  # every ef already reaches the target: the fastest measured
    return interp, first[0], first[1]


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--ef", default="10,20,40,80,160")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--metric")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--limit-queries", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--libs", default="nearly,hnswlib,faiss")
    ap.add_argument("--target-recall", type=float, default=0.95)
    ap.add_argument("--json")
    ap.add_argument("--keep", help="directory for the per-library JSON files (default: a temporary one)")
    a = ap.parse_args()
    libs = [x for x in a.libs.split(",") if x]
    for lib in libs:
        if lib not in ("nearly", "hnswlib", "faiss"):
            sys.exit(f"compare: unknown library {lib}")
    metric = a.metric or infer_metric(a.data)
    if not metric:
        sys.exit("compare: cannot infer the metric of the data set: pass --metric")
    for f in ("base.fvecs", "query.fvecs", "groundtruth.ivecs"):
        if not os.path.exists(os.path.join(a.data, f)):
            sys.exit(f"compare: {a.data}/{f} is missing")
    build_tools(libs)
    outdir = a.keep or tempfile.mkdtemp(prefix="nearly-compare-")
    os.makedirs(outdir, exist_ok=True)
    common = ["--data", a.data, "--ef", a.ef, "--threads", str(a.threads), "--m", str(a.m),
              "--ef-construction", str(a.ef_construction), "--metric", metric, "--k", str(a.k),
              "--repeat", str(a.repeat)]
    if a.limit_queries:
        common += ["--limit-queries", str(a.limit_queries)]

    best = {lib: None for lib in libs}
    commands = []
    for rnd in range(a.rounds):
        for lib in libs:
            jp = os.path.join(outdir, f"{lib}.{rnd}.json")
            cmd = lib_command(lib, common, jp)
            commands.append(" ".join(shlex.quote(c) for c in cmd))
            print(f"compare: round {rnd + 1}/{a.rounds}: {lib} ...", flush=True)
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if p.returncode != 0:
                sys.stdout.write(p.stdout)
                sys.exit(f"compare: {lib} failed (exit {p.returncode})")
            with open(jp) as f:
                best[lib] = merge(best[lib], json.load(f))

    ref = best[libs[0]]
    peers = [lib for lib in libs if lib != "nearly"]
    print()
    print(f"data {a.data}: n={ref['n']} dim={ref['dim']} nq={ref['nq']} metric={metric} "
          f"M={a.m} efC={a.ef_construction} threads={a.threads} k={a.k} rounds={a.rounds}")
    print("(shared machine: absolute figures are noisy; ratios from the same run are what count)\n")

    # per-ef table
    hdr = f"{'ef':>5} |" + "".join(f" {'recall ' + lib[:7]:>14}" for lib in libs) + " |"
    hdr += "".join(f" {'QPS1t ' + lib[:7]:>14}" for lib in libs) + " |"
    hdr += "".join(f" {'QPS' + str(a.threads) + 't ' + lib[:7]:>14}" for lib in libs)
    if "nearly" in libs:
        hdr += " |" + "".join(f" {'N/' + p[:7] + ' 1t':>12} {'N/' + p[:7] + ' ' + str(a.threads) + 't':>12}"
                               for p in peers)
    print(hdr)
    print("-" * len(hdr))
    for i, r0 in enumerate(ref["results"]):
        row = f"{r0['ef']:>5} |"
        row += "".join(f" {best[lib]['results'][i]['recall']:>14.4f}" for lib in libs) + " |"
        row += "".join(f" {best[lib]['results'][i]['qps_1t']:>14.0f}" for lib in libs) + " |"
        row += "".join(f" {best[lib]['results'][i]['qps_nt']:>14.0f}" for lib in libs)
        if "nearly" in libs:
            n = best["nearly"]["results"][i]
            row += " |" + "".join(f" {ratio(n['qps_1t'], best[p]['results'][i]['qps_1t']):>12}"
                                   f" {ratio(n['qps_nt'], best[p]['results'][i]['qps_nt']):>12}" for p in peers)
        print(row)

    # latency
    print()
    print(f"{'ef':>5} |" + "".join(f" {'p50us ' + lib[:7]:>14} {'p99us ' + lib[:7]:>14}" for lib in libs))
    for i, r0 in enumerate(ref["results"]):
        print(f"{r0['ef']:>5} |" + "".join(f" {best[lib]['results'][i]['p50_us']:>14.1f}"
                                         f" {best[lib]['results'][i]['p99_us']:>14.1f}" for lib in libs))

    # CPU-time based single-thread throughput: robust to being descheduled
    print()
    print("1-thread queries per second of thread CPU time (not inflated by time spent descheduled):")
    hdr2 = f"{'ef':>5} |" + "".join(f" {'QPS/CPU ' + lib[:7]:>16}" for lib in libs)
    if "nearly" in libs:
        hdr2 += " |" + "".join(f" {'N/' + p[:7]:>10}" for p in peers)
    print(hdr2)
    for i, r0 in enumerate(ref["results"]):
        row = f"{r0['ef']:>5} |" + "".join(f" {best[lib]['results'][i].get('qps_1t_cpu', 0):>16.0f}" for lib in libs)
        if "nearly" in libs:
            n = best["nearly"]["results"][i].get("qps_1t_cpu", 0)
            row += " |" + "".join(f" {ratio(n, best[p]['results'][i].get('qps_1t_cpu', 0)):>10}" for p in peers)
        print(row)

    # at target recall
    t = a.target_recall
    print(f"\nat recall@{a.k} = {t}:")
    summary = {}
    for lib in libs:
        res = best[lib]["results"]
        i1, ef1, q1 = at_recall(res, t, "qps_1t")
        iN, efN, qN = at_recall(res, t, "qps_nt")
        iC, _, qC = at_recall(res, t, "qps_1t_cpu")
        summary[lib] = {"qps_1t_interp": i1, "qps_nt_interp": iN, "first_ef": ef1, "qps_1t_first": q1,
                        "qps_nt_first": qN, "qps_1t_cpu_interp": iC, "qps_1t_cpu_first": qC}
        fmt = lambda v: f"{v:.0f}" if v else "not reached"
        print(f"  {lib:8} QPS 1t {fmt(i1):>11} (interp.)  {fmt(q1):>11} at first ef >= target ({ef1})   "
              f"QPS {a.threads}t {fmt(iN):>11} (interp.)  {fmt(qN):>11}")
    if "nearly" in libs:
        n = summary["nearly"]
        for p in peers:
            s = summary[p]
            print(f"  nearly/{p}: QPS 1t {ratio(n['qps_1t_interp'], s['qps_1t_interp'])} (interp.), "
                  f"{ratio(n['qps_1t_first'], s['qps_1t_first'])} (first ef); "
                  f"QPS {a.threads}t {ratio(n['qps_nt_interp'], s['qps_nt_interp'])} (interp.), "
                  f"{ratio(n['qps_nt_first'], s['qps_nt_first'])} (first ef); "
                  f"QPS/CPU 1t {ratio(n['qps_1t_cpu_interp'], s['qps_1t_cpu_interp'])} (interp.), "
                  f"{ratio(n['qps_1t_cpu_first'], s['qps_1t_cpu_first'])} (first ef)")

    print("\nbuild and memory:")
    for lib in libs:
        b = best[lib]
        print(f"  {lib:8} build {b['build_s']:8.2f} s ({b.get('build_cpu_s', 0):8.2f} s CPU)   peak RSS {b['peak_rss_bytes'] / 1048576:8.1f} MiB "
              f"(after load {b.get('rss_after_load_bytes', 0) / 1048576:7.1f})   "
              f"index bytes/vector excl. vector {b.get('bytes_per_vector_index', 0):7.1f}")
    if "nearly" in libs:
        n = best["nearly"]
        for p in peers:
            b = best[p]
            print(f"  nearly/{p}: build time {ratio(n['build_s'], b['build_s'])} "
                  f"(CPU time {ratio(n.get('build_cpu_s', 0), b.get('build_cpu_s', 0))}), "
                  f"peak RSS {ratio(n['peak_rss_bytes'], b['peak_rss_bytes'])}, "
                  f"peak RSS above the loaded data "
                  f"{ratio(n['peak_rss_bytes'] - n.get('rss_after_load_bytes', 0), b['peak_rss_bytes'] - b.get('rss_after_load_bytes', 0))}")
    print("\ncommands:")
    for c in commands:
        print("  " + c)
    print(f"(per-library JSON in {outdir})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"data": a.data, "metric": metric, "threads": a.threads, "rounds": a.rounds,
                       "target_recall": t, "libraries": best, "at_target": summary, "commands": commands}, f,
                      indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
