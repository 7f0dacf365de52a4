#!/usr/bin/python3
"""quant_table.py -- the table and goal ratios of bench/quant_compare.sh,
from the JSON files of one run.

Usage: /usr/bin/python3 bench/quant_table.py JSON_DIR [SAVED_INDEX_BYTES]
"""
import json, os, sys
d = sys.argv[1]
idx_bytes = int(sys.argv[2]) if len(sys.argv) > 2 else 0
order = ["nearly-float32", "nearly-int8", "nearly-int8-disk", "nearly-int8-cold", "nearly-binary", "nearly-binary-disk",
         "hnswlib", "faiss-hnsw-flat", "faiss-hnsw-sq8", "faiss-ivf-pq"]
runs = {n: json.load(open(os.path.join(d, n + ".json"))) for n in order if os.path.exists(os.path.join(d, n + ".json"))}
first = runs["nearly-float32"]
MiB = 1048576
print(f"data n={first['n']} dim={first['dim']} nq={first['nq']} metric={first['metric']} threads={first['threads']}  "
      f"nearly build {first['build_s']:.1f} s ({first['build_cpu_s']:.1f} s CPU); saved index {idx_bytes / MiB:.1f} MiB")
print("RSS: at the end of each run, base vectors freed (FAISS includes ~40 MiB of Python + numpy); anon = RssAnon,")
print("file = RssFile (mapped file pages: on-disk vectors/graph, program text; evictable).  disk: bytes in mapped files.")
print("ivf-pq: the ef column is nprobe.  QPS/CPU-s: 1-thread queries per second of that thread's CPU time.")
hdr = f"{'index':<19} {'RSS MiB':>8} {'anon':>7} {'file':>7} {'disk MiB':>8} {'codes B/v':>9} {'ef':>5} {'recall@10':>9} {'QPS 1t':>8} {'QPS/CPU-s':>9} {'QPS Nt':>8}"
print(hdr)
for name, j in runs.items():
    end = j.get("rss_end_bytes", 0) / MiB
    anon = j.get("rss_anon_end_bytes", 0) / MiB
    fil = j.get("rss_file_end_bytes", max(0, j.get("rss_end_bytes", 0) - j.get("rss_anon_end_bytes", 0))) / MiB
    disk = j.get("disk_bytes", 0) / MiB
    cb = j.get("bytes_per_vector_codes", 0)
    for r in j["results"]:
        print(f"{name:<19} {end:>8.1f} {anon:>7.1f} {fil:>7.1f} {disk:>8.1f} {cb:>9.1f} {r['ef']:>5} {r['recall']:>9.4f} "
              f"{r['qps_1t']:>8.0f} {r.get('qps_1t_cpu', 0):>9.0f} {r['qps_nt']:>8.0f}")

# Goals, from this run: memory relative to float32, and QPS/CPU-s relative
# to float32 at the lowest float ef reaching the same recall.
f = runs["nearly-float32"]
def at_recall(j, goal):
    ok = [r for r in j["results"] if r["recall"] >= goal]
    return max(ok, key=lambda r: r.get("qps_1t_cpu", 0)) if ok else None
print()
for name, goal in (("nearly-int8", 0.95), ("nearly-int8-disk", 0.95), ("nearly-binary", 0.90), ("nearly-binary-disk", 0.90)):
    if name not in runs:
        continue
    j = runs[name]
    r = at_recall(j, goal)
    if not r:
        print(f"{name}: no ef reaches recall {goal}")
        continue
    fr = at_recall(f, r["recall"]) or max(f["results"], key=lambda x: x["recall"])
    anon_ratio = j["rss_anon_end_bytes"] / f["rss_anon_end_bytes"]
    rss_ratio = j["rss_end_bytes"] / f["rss_end_bytes"]
    print(f"{name}: recall {r['recall']:.4f} at ef {r['ef']}: QPS/CPU-s {r['qps_1t_cpu']:.0f} = "
          f"{r['qps_1t_cpu'] / fr['qps_1t_cpu']:.2f}x float32 (ef {fr['ef']}, recall {fr['recall']:.4f}); "
          f"RSS {rss_ratio:.2f}x, anon RSS {anon_ratio:.2f}x float32's")

if os.environ.get("MD"):
    # The same as a markdown table, one row per index (values per ef joined by " / ").
    print()
    print("| index | RSS MiB (anon + file) | in mapped files MiB | codes B/vector | ef | recall@10 | QPS/CPU-s (1t) | QPS 1t | QPS 2t |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, j in runs.items():
        rs = j["results"]
        end = j.get("rss_end_bytes", 0) / MiB
        anon = j.get("rss_anon_end_bytes", 0) / MiB
        fil = end - anon
        disk = j.get("disk_bytes", 0) / MiB
        cb = j.get("bytes_per_vector_codes", 0)
        def cat(key, fmt):
            return " / ".join(fmt.format(r.get(key, 0)) for r in rs)
        print(f"| {name} | {end:.0f} ({anon:.0f} + {fil:.0f}) | {disk:.0f} | {cb:.0f} | {cat('ef', '{}')} | "
              f"{cat('recall', '{:.3f}')} | {cat('qps_1t_cpu', '{:.0f}')} | {cat('qps_1t', '{:.0f}')} | {cat('qps_nt', '{:.0f}')} |")
