#!/usr/bin/python3
"""faiss_bench.py -- the measurement of `nearly bench`, done with FAISS
(Debian's python3-faiss) IndexHNSWFlat, for bench/compare.sh.

Usage: same options as `nearly bench`:
  /usr/bin/python3 bench/faiss_bench.py --data DIR [--ef 10,20,40,80,160]
      [--threads N] [--m 16] [--ef-construction 200] [--metric cosine|dot|l2]
      [--k 10] [--limit-queries N] [--repeat R] [--json FILE]

Cosine = normalise base and queries, then METRIC_INNER_PRODUCT.  Build:
index.add(base) with faiss.omp_set_num_threads(N).  Per ef: a 1-thread pass
of single-query index.search calls (QPS, recall@k, p50/p99 latency; each
call includes the Python -> C++ call overhead, a few microseconds), then an
N-thread pass: one batched index.search call (QPS).  Peak RSS from
getrusage (includes the Python interpreter and numpy, ~30-40 MB).  Also
qps_1t_cpu (1-thread queries per second of thread CPU time) and build_cpu_s,
which time spent descheduled on a shared machine does not inflate.
"""
import argparse
import json
import os
import resource
import time

import numpy as np

import faiss


def read_vecs(path, dtype, limit=0):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        raise SystemExit(f"faiss_bench: {path} is empty")
    d = int(raw[0])
    if d <= 0 or raw.size % (d + 1) != 0:
        raise SystemExit(f"faiss_bench: {path}: not a whole number of dim-{d} records (truncated?)")
    rows = raw.reshape(-1, d + 1)
    if not np.all(rows[:, 0] == d):
        raise SystemExit(f"faiss_bench: {path}: records with differing dimensions")
    out = rows[:, 1:]
    if limit:
        out = out[:limit]
    return np.ascontiguousarray(out).view(dtype)


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
            if isinstance(m, str):
                return word(m)
    except (OSError, ValueError):
        pass
    return None


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def status_bytes(key):
    """A "Key:   123 kB" line of /proc/self/status, in bytes (0 if absent)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


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
    ap.add_argument("--json")
    ap.add_argument("--index", choices=["hnsw-flat", "hnsw-sq8", "ivf-pq"], default="hnsw-flat",
                    help="hnsw-sq8: IndexHNSWSQ with 8-bit scalar codes (no rescoring); ivf-pq: IndexIVFPQ "
                         "(nlist ~ 4*sqrt(n), dim/4 sub-quantizers of 8 bits, trained on <= 100k vectors; "
                         "the --ef values are used as nprobe)")
    a = ap.parse_args()
    efs = [int(x) for x in a.ef.split(",") if x]
    metric = a.metric or infer_metric(a.data)
    metric = {"angular": "cosine", "euclidean": "l2", "euclid": "l2", "ip": "dot"}.get(metric, metric)
    if metric not in ("cosine", "l2", "dot"):
        raise SystemExit("faiss_bench: cannot infer the metric: pass --metric cosine|dot|l2")

    base = read_vecs(os.path.join(a.data, "base.fvecs"), np.float32)
    queries = read_vecs(os.path.join(a.data, "query.fvecs"), np.float32, a.limit_queries)
    gt = read_vecs(os.path.join(a.data, "groundtruth.ivecs"), np.int32)[: len(queries)]
    if queries.shape[1] != base.shape[1] or len(gt) < len(queries) or gt.shape[1] < a.k:
        raise SystemExit("faiss_bench: inconsistent data files")
    n, dim = base.shape
    nq = len(queries)
    if metric == "cosine":
        faiss.normalize_L2(base)
        faiss.normalize_L2(queries)
    rss_loaded = peak_rss()

    fm = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
    ivf = a.index == "ivf-pq"
    if a.index == "hnsw-sq8":
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, a.m, fm)
    elif ivf:
        nlist = max(16, int(4 * np.sqrt(n)))
        pqm = dim // 4
        while dim % pqm:
            pqm -= 1
        quantizer = faiss.IndexFlat(dim, fm)
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pqm, 8, fm)
    else:
        index = faiss.IndexHNSWFlat(dim, a.m, fm)
    if not ivf:
        index.hnsw.efConstruction = a.ef_construction
    faiss.omp_set_num_threads(a.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    if not index.is_trained:
        sample = base if n <= 100000 else base[np.random.default_rng(1).choice(n, 100000, replace=False)]
        index.train(sample)
        del sample
    index.add(base)
    del base  # the index holds its own copy (or codes): RSS at the end is the index's
    build_s, build_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    # Memory per vector excluding the vector: neighbour lists (int32 per
    # slot over all levels), offsets (8 B), level (4 B).
    if ivf:  # code + id per vector (the vector itself is not kept)
        bpv_index = index.code_size + 8
    else:
        nb_slots = faiss.vector_to_array(index.hnsw.neighbors).size
        bpv_index = (nb_slots * 4) / n + 8 + 4

    def set_ef(ef):
        if ivf:
            index.nprobe = ef
        else:
            index.hnsw.efSearch = ef

    k = a.k
    gtk = gt[:, :k]
    # Warm-up (untimed), as in `nearly bench`.
    set_ef(efs[0])
    index.search(queries[: min(nq, 200)], k)

    results = []
    for ef in efs:
        set_ef(ef)
        r = {"ef": ef, "recall": 0.0, "qps_1t": 0.0, "qps_nt": 0.0, "p50_us": 0.0, "p99_us": 0.0, "qps_1t_cpu": 0.0}
        for rep in range(a.repeat):
            faiss.omp_set_num_threads(1)
            lat = np.empty(nq)
            ids = np.empty((nq, k), dtype=np.int64)
            tp, cp = time.perf_counter(), time.thread_time()
            for q in range(nq):
                tq = time.perf_counter()
                _, I = index.search(queries[q : q + 1], k)
                lat[q] = time.perf_counter() - tq
                ids[q] = I[0]
            qps1 = nq / (time.perf_counter() - tp)
            r["qps_1t_cpu"] = max(r["qps_1t_cpu"], nq / (time.thread_time() - cp))
            if qps1 > r["qps_1t"]:
                r["qps_1t"] = qps1
                r["p50_us"] = float(np.percentile(lat, 50) * 1e6)
                r["p99_us"] = float(np.percentile(lat, 99) * 1e6)
            if rep == 0:
                hits = sum(len(np.intersect1d(ids[i], gtk[i])) for i in range(nq))
                r["recall"] = hits / (nq * k)
            faiss.omp_set_num_threads(a.threads)
            tp = time.perf_counter()
            index.search(queries, k)
            r["qps_nt"] = max(r["qps_nt"], nq / (time.perf_counter() - tp))
        results.append(r)
    peak = peak_rss()
    rss_end, anon_end = status_bytes("VmRSS:"), status_bytes("RssAnon:")

    print(f"faiss bench  data={a.data}  n={n} dim={dim} nq={nq} metric={metric}  faiss {faiss.__version__}  index {a.index}")
    print(f"M={a.m} ef_construction={a.ef_construction} threads={a.threads}  build {build_s:.2f} s ({build_cpu_s:.2f} s CPU)")
    print(f"index memory per vector (excluding the vector): {bpv_index:.1f} B")
    print(f"peak RSS {peak / 1048576:.1f} MiB ({rss_loaded / 1048576:.1f} MiB after loading)\n")
    print(f"{'ef':>6} {'recall':>9} {'QPS 1t':>11} {'QPS Nt':>11} {'p50 us':>9} {'p99 us':>9}")
    for r in results:
        print(f"{r['ef']:>6} {r['recall']:>9.4f} {r['qps_1t']:>11.0f} {r['qps_nt']:>11.0f} {r['p50_us']:>9.1f} {r['p99_us']:>9.1f}")
    if a.json:
        out = {"library": "faiss", "n": n, "dim": dim, "nq": nq, "k": k, "metric": metric, "m": a.m,
               "ef_construction": a.ef_construction, "threads": a.threads, "build_s": round(build_s, 4), "build_cpu_s": round(build_cpu_s, 4),
               "peak_rss_bytes": peak, "rss_after_load_bytes": rss_loaded, "rss_end_bytes": rss_end,
               "rss_anon_end_bytes": anon_end,
               "bytes_per_vector_index": round(bpv_index, 1), "faiss_version": faiss.__version__, "index": a.index,
               "results": [{kk: (round(v, 5) if isinstance(v, float) else v) for kk, v in r.items()} for r in results]}
        with open(a.json, "w") as f:
            json.dump(out, f)
            f.write("\n")


if __name__ == "__main__":
    main()
