#!/usr/bin/env bash
# `make run`: for now, a benchmark demo.  Generates a small synthetic data
# set into build/data/demo (once) and runs `build/nearly bench` on it.
#   NEARLY_DEMO_N (20000) and NEARLY_DEMO_DIM (64) change the data size.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${NEARLY_DEMO_N:-20000}
DIM=${NEARLY_DEMO_DIM:-64}
DATA=build/data/demo
[ -x build/nearly ] || make -j2 --no-print-directory build/nearly
if [ ! -f "$DATA/groundtruth.ivecs" ] || ! grep -q "\"n\": $N," "$DATA/meta.json" 2>/dev/null \
   || ! grep -q "\"d\": $DIM," "$DATA/meta.json"; then
  echo "run: generating $N x $DIM synthetic vectors into $DATA"
  build/nearly gen --out "$DATA" --n "$N" --dim "$DIM" --nq 1000 --metric cosine
fi
THREADS=$(nproc 2>/dev/null || echo 2)
echo "run: build/nearly bench --data $DATA --threads $THREADS"
exec build/nearly bench --data "$DATA" --threads "$THREADS" --ef 10,20,40,80,160
