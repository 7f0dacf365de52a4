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
# Environment: OUT=DIR keeps the JSON files there; IVF=1 NPROBE=8,16,32,64;
# REPEAT=R keeps the best QPS of R passes per ef (every program).
# (Run a copy of this script if you may edit it meanwhile: bash reads it as it goes.)
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
COMMON=(--data "$DATA" --ef "$EF" --threads "$T" --repeat "${REPEAT:-1}")
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
    PQC=(--data "$DATA" --ef "${NPROBE:-8,16,32,64}" --threads "$T" --repeat "${REPEAT:-1}")
    [ "$LQ" != 0 ] && PQC+=(--limit-queries "$LQ")
    run "faiss IVFPQ" /usr/bin/python3 "$ROOT/bench/faiss_bench.py" "${PQC[@]}" --index ivf-pq --json "$OUT/faiss-ivf-pq.json"
fi
IDX_BYTES=$(stat -c %s "$WORK/index.hnsw")
/usr/bin/python3 "$ROOT/bench/quant_table.py" "$OUT" "$IDX_BYTES"
