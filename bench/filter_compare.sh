#!/usr/bin/env bash
# Filtered search, Nearly against its peers in one run (docs/BENCHMARKS.md,
# "Filtered search"):
#   bench/filter_compare.sh [N] [DIM] [NQ] [EFS] [ROUNDS] [TARGET]
#   bench/filter_compare.sh 100000 128 200 16,32,64,128,256 2 0.95
# 1. build/filter_bench generates the data, measures Nearly's planner,
#    post-filtering (a) and the exact filtered scan (b), writes the data;
# 2. build/hnswlib_filter (bench/hnswlib_filter.cpp, -O3 -march=native)
#    runs hnswlib's filtered traversal (c) on the same data;
# 3. bench/filter_compare.py faiss runs FAISS with an IDSelectorBitmap;
# 4. one table: QPS per CPU second at recall@10 >= TARGET, with ratios.
# Each program builds its own graph (M 16, ef_construction 100, L2).
# KEEP=DIR keeps the data file and the raw results in DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-100000} DIM=${2:-128} NQ=${3:-200} EFS=${4:-16,32,64,128,256} ROUNDS=${5:-2} TARGET=${6:-0.95}
WORK=${KEEP:-$(mktemp -d /tmp/ny_filter_compare_XXXXXX)}
mkdir -p "$WORK"
cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT

make -C "$ROOT" -j2 --no-print-directory build/filter_bench >/dev/null
HL="$ROOT/build/hnswlib_filter"
if [ ! -x "$HL" ] || [ "$ROOT/bench/hnswlib_filter.cpp" -nt "$HL" ]; then
    echo "filter_compare: g++ -O3 -march=native -std=c++17 -pthread bench/hnswlib_filter.cpp -o build/hnswlib_filter"
    g++ -O3 -march=native -std=c++17 -pthread "$ROOT/bench/hnswlib_filter.cpp" -o "$HL"
fi
echo "== Nearly: build/filter_bench $N $DIM $NQ DATA $EFS RESULTS $ROUNDS"
"$ROOT/build/filter_bench" "$N" "$DIM" "$NQ" "$WORK/data.bin" "$EFS" "$WORK/nearly.tsv" "$ROUNDS"
echo "== hnswlib: build/hnswlib_filter DATA $EFS RESULTS"
"$HL" "$WORK/data.bin" "$EFS" "$WORK/hnswlib.tsv"
echo "== FAISS: bench/filter_compare.py faiss DATA $EFS RESULTS"
/usr/bin/python3 "$ROOT/bench/filter_compare.py" faiss "$WORK/data.bin" "$EFS" "$WORK/faiss.tsv"
/usr/bin/python3 "$ROOT/bench/filter_compare.py" table --target "$TARGET" "$WORK/nearly.tsv" "$WORK/hnswlib.tsv" "$WORK/faiss.tsv"
