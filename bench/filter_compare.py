#!/usr/bin/python3
"""hnswlib with a filter callback on the data written by build/filter_bench.

    build/filter_bench 100000 128 200 /tmp/fb.bin
    /usr/bin/python3 bench/filter_compare.py /tmp/fb.bin

Builds an hnswlib index (M=16, ef_construction=100, L2, as filter_bench's
collection), then for each selectivity runs knn_query(k=10,
filter=lambda i: sel[i] < limit) at ef=64, one query at a time on one
thread, and prints QPS and recall@10 against filter_bench's exact filtered
top-10.  hnswlib calls the Python filter for every node it considers, which
is its documented way of filtering.

Debian 12 ships hnswlib 0.6.2, whose knn_query has no filter parameter (it
came in 0.7.0).  There the script falls back to post-filtering: knn_query
for k' = min(2k / share, 5000) with ef = max(ef, k'), then keeps the
allowed ids -- the same method as filter_bench's "postfilt" row.
"""
import sys
import time

import hnswlib
import numpy as np

SELS = [0.5, 0.1, 0.01, 0.001, 0.0001]


def main():
    path = sys.argv[1]
    ef = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    with open(path, "rb") as f:
        n, dim, nq = np.frombuffer(f.read(24), dtype=np.uint64).astype(int)
        vecs = np.frombuffer(f.read(4 * n * dim), dtype=np.float32).reshape(n, dim)
        sel = np.frombuffer(f.read(4 * n), dtype=np.uint32)
        qs = np.frombuffer(f.read(4 * nq * dim), dtype=np.float32).reshape(nq, dim)
        truth = np.frombuffer(f.read(8 * 5 * nq * 10), dtype=np.int64).reshape(5, nq, 10)
    t = time.time()
    idx = hnswlib.Index(space="l2", dim=dim)
    idx.init_index(max_elements=n, M=16, ef_construction=100)
    idx.set_num_threads(2)
    idx.add_items(vecs, np.arange(n))
    print(f"# hnswlib {getattr(hnswlib, '__version__', '?')}: n={n} dim={dim} nq={nq} build {time.time() - t:.1f}s, ef={ef}")
    idx.set_ef(ef)
    idx.set_num_threads(1)
    sel_list = sel.tolist()
    try:
        idx.knn_query(qs[:1], k=1, filter=lambda i: True)
        has_filter = True
    except TypeError:
        has_filter = False
        print("# this hnswlib has no filter parameter: post-filtering instead")
    for si, s in enumerate(SELS):
        lim = int(s * 1000000)
        flt = lambda i: sel_list[i] < lim  # noqa: E731
        hits = want = 0
        t = time.time()
        kk = min(n, 5000, int(np.ceil(2 * 10 / s)))
        if not has_filter:
            idx.set_ef(max(ef, kk))
        for qi in range(nq):
            tr = [x for x in truth[si, qi] if x >= 0]
            try:
                if has_filter:
                    labels, _ = idx.knn_query(qs[qi:qi + 1], k=10, filter=flt)
                    got = set(labels[0].tolist())
                else:
                    labels, _ = idx.knn_query(qs[qi:qi + 1], k=kk)
                    got = set([x for x in labels[0].tolist() if sel_list[x] < lim][:10])
            except RuntimeError:  # fewer than k points found
                got = set()
            want += len(tr)
            hits += sum(1 for x in tr if x in got)
        el = time.time() - t
        how = "python filter callback" if has_filter else f"post-filter: top {kk}, ef {max(ef, kk)}"
        print(f"{s * 100:<11g} {'hnswlib':<9} {nq / el:10.0f} {hits / want if want else 1.0:8.4f}   {how}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
