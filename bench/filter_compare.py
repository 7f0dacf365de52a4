#!/usr/bin/python3
"""Filtered-search peers and the combined table, for bench/filter_compare.sh.

    filter_compare.py faiss DATA [EFS] [RESULTS]
    filter_compare.py table [--target 0.95] RESULTS...

faiss: FAISS (python3-faiss 1.7.3) IndexHNSWFlat (M=16, efConstruction=100,
L2, built with 2 OpenMP threads) on the DATA_OUT file of build/filter_bench
(u64 n, dim, nq; f32 vecs[n][dim]; u32 sel[n]; f32 queries[nq][dim];
i64 truth[5][nq][10], -1 pads).  For each selectivity the allowed ids go
into an IDSelectorBitmap and each ef runs, with index.hnsw.efSearch = ef
(1.7.3 ignores SearchParametersHNSW.efSearch),
index.search(queries, 10, params=SearchParametersHNSW(sel=...)) with one
OpenMP thread.  FAISS's HNSW walk goes through non-selected nodes
and keeps only selected ones as results, like hnswlib's filter.  The
queries go in one call (no per-query Python overhead); QPS is per wall
second and per CPU second of the process.

table: reads the tab-separated rows (lib method share ef qps qps_cpu recall)
written by build/filter_bench, build/hnswlib_filter and the faiss mode, and
prints per selectivity each method's QPS per CPU second at recall@10 =
target, interpolated on its ef sweep (or its best recall if it never gets
there), and the ratio of Nearly's planner to the best peer.
"""
import argparse
import math
import sys
import time

SELS = [0.5, 0.1, 0.01, 0.001, 0.0001]


def read_data(path):
    import numpy as np

    with open(path, "rb") as f:
        n, dim, nq = (int(x) for x in np.frombuffer(f.read(24), dtype=np.uint64))
        vecs = np.frombuffer(f.read(4 * n * dim), dtype=np.float32).reshape(n, dim)
        sel = np.frombuffer(f.read(4 * n), dtype=np.uint32)
        qs = np.frombuffer(f.read(4 * nq * dim), dtype=np.float32).reshape(nq, dim)
        truth = np.frombuffer(f.read(8 * 5 * nq * 10), dtype=np.int64).reshape(5, nq, 10)
    if truth.shape != (5, nq, 10):
        raise SystemExit(f"filter_compare: {path} is truncated")
    return n, dim, nq, vecs, sel, qs, truth


def run_faiss(path, efs, out):
    import faiss
    import numpy as np

    n, dim, nq, vecs, sel, qs, truth = read_data(path)
    t = time.time()
    idx = faiss.IndexHNSWFlat(dim, 16)
    idx.hnsw.efConstruction = 100
    faiss.omp_set_num_threads(2)
    idx.add(np.ascontiguousarray(vecs))
    print(f"# faiss {faiss.__version__} IndexHNSWFlat: n={n} dim={dim} nq={nq} M=16 efc=100 build {time.time() - t:.1f}s (2 threads)")
    print(f"{'selectivity':<11} {'method':<9} {'ef':>5} {'QPS':>10} {'QPS/cpu':>10} {'recall':>8}   notes")
    faiss.omp_set_num_threads(1)
    rows = []
    for si, s in enumerate(SELS):
        lim = int(s * 1000000)
        allowed = sel < lim
        bits = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        for ef in efs:
            # 1.7.3 ignores SearchParametersHNSW.efSearch (the search reads
            # index.hnsw.efSearch; checked: recall does not move with it).
            idx.hnsw.efSearch = ef
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
            t, c = time.perf_counter(), time.process_time()
            _, ids = idx.search(qs, 10, params=params)
            w, cpu = time.perf_counter() - t, time.process_time() - c
            hits = want = 0
            for qi in range(nq):
                tr = [x for x in truth[si, qi] if x >= 0]
                got = set(int(x) for x in ids[qi] if x >= 0)
                want += len(tr)
                hits += sum(1 for x in tr if x in got)
            rec = hits / want if want else 1.0
            qps, qpc = nq / w, nq / max(cpu, 1e-9)
            print(f"{s * 100:<11g} {'faiss':<9} {ef:>5} {qps:10.0f} {qpc:10.0f} {rec:8.4f}   {int(allowed.sum())} allowed, IDSelectorBitmap")
            sys.stdout.flush()
            rows.append(f"faiss\tfaiss\t{s:g}\t{ef}\t{qps:.1f}\t{qpc:.1f}\t{rec:.4f}\n")
        del selector, bits
    if out:
        with open(out, "w") as f:
            f.writelines(rows)


def table(files, target):
    rows = []
    for p in files:
        with open(p) as f:
            for line in f:
                lib, meth, share, ef, qps, qpc, rec = line.rstrip("\n").split("\t")
                rows.append((meth, float(share), int(ef), float(qps), float(qpc), float(rec)))
    order = ["planner", "postfilt", "scan", "hnswlib", "faiss"]
    label = {"planner": "Nearly planner", "postfilt": "(a) post-filter", "scan": "(b) exact scan",
             "hnswlib": "(c) hnswlib 0.6.2", "faiss": "FAISS 1.7.3"}
    present = [m for m in order if any(r[0] == m for r in rows)]

    def at_target(meth, s):
        """QPS per CPU second at recall == target: on the method's Pareto
        frontier (no other point both faster and more accurate), linear in
        (recall, log QPS) between the two points that bracket the target.
        Returns (qps, label) or None when the method was not run."""
        pts = [(r[5], r[4], r[2]) for r in rows if r[0] == meth and abs(r[1] - s) < 1e-12]
        if not pts:
            return None
        front = [p for p in pts if not any(q[0] >= p[0] and q[1] > p[1] or q[0] > p[0] and q[1] >= p[1] for q in pts)]
        front.sort()  # by recall ascending, so QPS descending
        if front[-1][0] < target:
            return (None, f"< ({front[-1][0]:.3f} max)")
        if front[0][0] >= target:
            rec, q, ef = front[0]
            return (q, f"{q:,.0f} (r {rec:.3f}" + (f", ef {ef})" if meth != "scan" else ")"))
        for lo, hi in zip(front, front[1:]):
            if lo[0] < target <= hi[0]:
                t = (target - lo[0]) / (hi[0] - lo[0])
                q = math.exp(math.log(lo[1]) + t * (math.log(hi[1]) - math.log(lo[1])))
                return (q, f"{q:,.0f} (ef {lo[2]}-{hi[2]})")
        return None

    print(f"\nQPS per CPU second (1 thread) at recall@10 = {target}, interpolated on each method's ef sweep "
          f"(linear in recall and log QPS between the bracketing ef values; a single recall in brackets: "
          f"every ef tried already exceeds the target, the fastest is shown; '<': never reached)")
    hdr = "| selectivity | " + " | ".join(label[m] for m in present) + " | planner / best peer |"
    print(hdr)
    print("|" + "---|" * (len(present) + 2))
    for s in SELS:
        cells, peers = [], []
        pl = at_target("planner", s)
        for m in present:
            b = at_target(m, s)
            if b is None:
                cells.append("-")
                continue
            cells.append(b[1])
            if m != "planner" and b[0]:
                peers.append((b[0], m))
        ratio = "-"
        if pl and pl[0] and peers:
            bq, bm = max(peers)
            ratio = f"{pl[0] / bq:.2f}x vs {bm}"
        print(f"| {s * 100:g}% | " + " | ".join(cells) + f" | {ratio} |")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("faiss", "table"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "faiss":
        if len(sys.argv) < 3:
            raise SystemExit(__doc__)
        efs = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "16,32,64,128,256").split(",")]
        run_faiss(sys.argv[2], efs, sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        ap = argparse.ArgumentParser()
        ap.add_argument("--target", type=float, default=0.95)
        ap.add_argument("files", nargs="+")
        a = ap.parse_args(sys.argv[2:])
        table(a.files, a.target)


if __name__ == "__main__":
    main()
