#!/usr/bin/env bash
# Quantized search side by side, in one run on one data set:
#   nearly float32 / int8+rescore / int8+rescore with vectors on disk /
#   binary+rescore (nearly bench --quant, --on-disk),
#   hnswlib (float), FAISS IndexHNSWFlat and IndexHNSWSQ (8-bit, no rescoring).
# Prints peak RSS, recall@10 and QPS (1 thread, and per CPU-second) per ef.
#   bench/quant_compare.sh DATA_DIR [EF_LIST] [OVERSAMPLING_INT8] [OVERSAMPLING_BINARY] [THREADS] [LIMIT_QUERIES]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${1:?usage: bench/quant_compare.sh DATA_DIR [EF_LIST] [OS_INT8] [OS_BINARY] [THREADS] [LIMIT_QUERIES]}
EF=${2:-32,64,128}
OS8=${3:-2}
OSB=${4:-10}
T=${5:-2}
LQ=${6:-0}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
COMMON=(--data "$DATA" --ef "$EF" --threads "$T")
[ "$LQ" != 0 ] && COMMON+=(--limit-queries "$LQ")
[ -x "$ROOT/build/nearly" ] || make -C "$ROOT" -j2 >/dev/null
if [ ! -x "$ROOT/build/hnswlib_bench" ]; then
    g++ -O3 -march=native -std=c++17 -pthread "$ROOT/bench/hnswlib_bench.cpp" -o "$ROOT/build/hnswlib_bench"
fi
"$ROOT/build/nearly" bench "${COMMON[@]}" --json "$OUT/nearly-float32.json" >/dev/null
"$ROOT/build/nearly" bench "${COMMON[@]}" --quant int8 --oversampling "$OS8" --json "$OUT/nearly-int8.json" >/dev/null
mkdir -p "$OUT/disk"
"$ROOT/build/nearly" bench "${COMMON[@]}" --quant int8 --oversampling "$OS8" --on-disk "$OUT/disk" --json "$OUT/nearly-int8-disk.json" >/dev/null
"$ROOT/build/nearly" bench "${COMMON[@]}" --quant binary --oversampling "$OSB" --json "$OUT/nearly-binary.json" >/dev/null
"$ROOT/build/hnswlib_bench" "${COMMON[@]}" --json "$OUT/hnswlib.json" >/dev/null
/usr/bin/python3 "$ROOT/bench/faiss_bench.py" "${COMMON[@]}" --json "$OUT/faiss-hnsw-flat.json" >/dev/null
/usr/bin/python3 "$ROOT/bench/faiss_bench.py" "${COMMON[@]}" --index hnsw-sq8 --json "$OUT/faiss-hnsw-sq8.json" >/dev/null
/usr/bin/python3 - "$OUT" <<'PY'
import json, os, sys
d = sys.argv[1]
order = ["nearly-float32", "nearly-int8", "nearly-int8-disk", "nearly-binary", "hnswlib", "faiss-hnsw-flat", "faiss-hnsw-sq8"]
first = json.load(open(os.path.join(d, order[0] + ".json")))
print(f"data n={first['n']} dim={first['dim']} nq={first['nq']} metric={first['metric']} threads={first['threads']}")
print("RSS end: nearly's RSS after the searches with the base vectors freed (index + queries);")
print("peak-load: peak RSS minus the RSS after loading the data files (all libraries).")
print(f"{'index':<16} {'RSS end MiB':>11} {'anon end MiB':>12} {'peak-load MiB':>13} {'codes B/vec':>11} {'ef':>5} {'recall@10':>9} {'QPS 1t':>9} {'QPS/CPU-s':>10} {'QPS Nt':>9}")
for name in order:
    j = json.load(open(os.path.join(d, name + ".json")))
    rss = j["peak_rss_bytes"] / 1048576
    idx = (j["peak_rss_bytes"] - j["rss_after_load_bytes"]) / 1048576
    cb = j.get("bytes_per_vector_codes", 0)
    end = j.get("rss_end_bytes", 0) / 1048576
    anon = j.get("rss_anon_end_bytes", 0) / 1048576
    for r in j["results"]:
        print(f"{name:<16} {end:>11.1f} {anon:>12.1f} {idx:>13.1f} {cb:>11.1f} {r['ef']:>5} {r['recall']:>9.4f} {r['qps_1t']:>9.0f} {r.get('qps_1t_cpu', 0):>10.0f} {r['qps_nt']:>9.0f}")
PY
