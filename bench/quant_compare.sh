#!/usr/bin/env bash
# Quantized search side by side, in one run on one data set:
#   nearly float32 / int8+rescore / int8+rescore with vectors and graph on
#   disk (warm, and cold: pages dropped before every timed pass) /
#   binary+rescore / binary+rescore with vectors and graph on disk
#   (nearly bench --quant, --on-disk, --graph-on-disk, --cold; the graph is
#   built once and loaded by the other runs), hnswlib (float), FAISS
#   IndexHNSWFlat, IndexHNSWSQ (8-bit, no rescoring) and, with IVF=1,
#   IndexIVFPQ (dim/4 bytes per vector; nprobe from NPROBE).
# Prints RSS at the end of each run (anonymous and file-backed separately;
# base vectors freed after the build in every program), the bytes held in
# mapped files, recall@10 and QPS (1 thread, per CPU-second of that thread,
# and THREADS threads) per ef.
#   bench/quant_compare.sh DATA_DIR [EF_LIST] [OVERSAMPLING_INT8] [OVERSAMPLING_BINARY] [THREADS] [LIMIT_QUERIES]
# Environment: OUT=DIR keeps the JSON files there; IVF=1 NPROBE=8,16,32,64.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${1:?usage: bench/quant_compare.sh DATA_DIR [EF_LIST] [OS_INT8] [OS_BINARY] [THREADS] [LIMIT_QUERIES]}
EF=${2:-16,32,64,128}
OS8=${3:-2}
OSB=${4:-8}
T=${5:-2}
LQ=${6:-0}
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    WORK=$(mktemp -d "$OUT/work.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
else
    OUT=$(mktemp -d)
    WORK=$OUT/work
    mkdir -p "$WORK"
    trap 'rm -rf "$OUT"' EXIT
fi
COMMON=(--data "$DATA" --ef "$EF" --threads "$T")
[ "$LQ" != 0 ] && COMMON+=(--limit-queries "$LQ")
[ -x "$ROOT/build/nearly" ] || make -C "$ROOT" -j2 >/dev/null
if [ ! -x "$ROOT/build/hnswlib_bench" ] || [ "$ROOT/bench/hnswlib_bench.cpp" -nt "$ROOT/build/hnswlib_bench" ]; then
    g++ -O3 -march=native -std=c++17 -pthread "$ROOT/bench/hnswlib_bench.cpp" -o "$ROOT/build/hnswlib_bench"
fi
# A private copy: rebuilding build/ during the run does not mix binaries.
cp "$ROOT/build/nearly" "$WORK/nearly"
NB=("$WORK/nearly" bench "${COMMON[@]}" --index "$WORK/index.hnsw")
run() { echo "== $1" >&2; shift; "$@" >/dev/null; }
mkdir -p "$WORK/disk"
run "nearly float32 (builds and saves the graph)" "${NB[@]}" --json "$OUT/nearly-float32.json"
run "nearly int8" "${NB[@]}" --quant int8 --oversampling "$OS8" --json "$OUT/nearly-int8.json"
run "nearly int8, vectors+graph on disk" "${NB[@]}" --quant int8 --oversampling "$OS8" --on-disk "$WORK/disk" --graph-on-disk --json "$OUT/nearly-int8-disk.json"
run "nearly int8, on disk, cold" "${NB[@]}" --quant int8 --oversampling "$OS8" --on-disk "$WORK/disk" --graph-on-disk --cold --json "$OUT/nearly-int8-cold.json"
run "nearly binary" "${NB[@]}" --quant binary --oversampling "$OSB" --json "$OUT/nearly-binary.json"
run "nearly binary, vectors+graph on disk" "${NB[@]}" --quant binary --oversampling "$OSB" --on-disk "$WORK/disk" --graph-on-disk --json "$OUT/nearly-binary-disk.json"
run "hnswlib" "$ROOT/build/hnswlib_bench" "${COMMON[@]}" --json "$OUT/hnswlib.json"
run "faiss HNSWFlat" /usr/bin/python3 "$ROOT/bench/faiss_bench.py" "${COMMON[@]}" --json "$OUT/faiss-hnsw-flat.json"
run "faiss HNSWSQ8" /usr/bin/python3 "$ROOT/bench/faiss_bench.py" "${COMMON[@]}" --index hnsw-sq8 --json "$OUT/faiss-hnsw-sq8.json"
if [ "${IVF:-0}" = 1 ]; then
    PQC=(--data "$DATA" --ef "${NPROBE:-8,16,32,64}" --threads "$T")
    [ "$LQ" != 0 ] && PQC+=(--limit-queries "$LQ")
    run "faiss IVFPQ" /usr/bin/python3 "$ROOT/bench/faiss_bench.py" "${PQC[@]}" --index ivf-pq --json "$OUT/faiss-ivf-pq.json"
fi
IDX_BYTES=$(stat -c %s "$WORK/index.hnsw")
/usr/bin/python3 - "$OUT" "$IDX_BYTES" <<'PY'
import json, os, sys
d, idx_bytes = sys.argv[1], int(sys.argv[2])
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
PY
