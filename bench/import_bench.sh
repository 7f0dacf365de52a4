#!/usr/bin/env bash
# Import benchmark: rows/s and peak RSS of `nearly import` for .fvecs and
# .jsonl inputs, at each stage of the pipeline:
#   dry-run   parsing only
#   wal-only  parsing + write-ahead log (fsync once a second), no index
#   embedded  into a data directory (parsing + WAL + HNSW indexing)
#   http      through `nearly serve` (REST, ?wait=true, --parallel 4)
# plus an import under `ulimit -v` of inputs several times larger than the
# limit, and search latency (p50/p99) on the collection, idle and while an
# import runs.
#
#   bench/import_bench.sh [--n 1000000] [--n-index 100000] [--dim 128] [--dir /tmp/nearly-import-bench]
#
# Prints one line per run; the JSON summaries stay in DIR/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
N=1000000; NI=100000; DIM=128; DIR=/tmp/nearly-import-bench; LIMIT_MB=256
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=$2; shift 2;; --n-index) NI=$2; shift 2;; --dim) DIM=$2; shift 2;; --dir) DIR=$2; shift 2;;
    --limit-mb) LIMIT_MB=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
BIN=$PWD/build/nearly
[ -x "$BIN" ] || { echo "build first: make" >&2; exit 1; }
mkdir -p "$DIR"; cd "$DIR"
PY=/usr/bin/python3

if [ ! -f data/base.fvecs ] || [ "$(($(stat -L -c %s data/base.fvecs) / (4 * (DIM + 1))))" != "$N" ]; then
  rm -rf data
  "$BIN" gen --out data --n "$N" --dim "$DIM" --nq 10 --metric l2 >/dev/null
  rm -f data.jsonl
fi
if [ ! -f data.jsonl ]; then
  $PY - "$DIM" <<'EOF'
import sys, numpy as np
d = int(sys.argv[1])
X = np.fromfile('data/base.fvecs', dtype=np.float32).reshape(-1, d + 1)[:, 1:]
with open('data.jsonl', 'w') as f:
    for i in range(X.shape[0]):
        f.write('{"id":%d,"vector":[%s],"cat":"c%d","n":%d}\n'
                % (i, ",".join("%.9g" % v for v in X[i].tolist()), i % 10, i))
EOF
fi
# Prefixes of NI rows for the indexed runs.
head -c $((NI * 4 * (DIM + 1))) data/base.fvecs > small.fvecs
head -n "$NI" data.jsonl > small.jsonl

row() { # label json
  $PY - "$1" "$2" <<'EOF'
import json, sys
j = json.load(open(sys.argv[2]))
print("%-40s %8d rows %7.1f s %8.0f rows/s %6.1f CPU s  peak RSS %7.1f MB" % (sys.argv[1], j["rows"], j["seconds"], j["rows_per_s"], j["cpu_seconds"], j["peak_rss"] / 1e6))
EOF
}
Q="--no-progress --log-every 1000"
for f in fvecs jsonl; do
  in=data.$f; [ $f = fvecs ] && in=data/base.fvecs
  "$BIN" import --dry-run --collection x $Q --summary-json dry_$f.json "$in" 2>/dev/null
  row "$f $N dry-run (parse)" dry_$f.json
  rm -rf wal; "$BIN" import --wal-only wal --collection x $Q --summary-json wal_$f.json "$in" 2>/dev/null
  row "$f $N wal-only (parse+WAL)" wal_$f.json; rm -rf wal
done

# Bigger than the allowed memory: two copies of the .jsonl (and of the .fvecs)
# under ulimit -v.
for f in fvecs jsonl; do
  in=data.$f; [ $f = fvecs ] && in=data/base.fvecs
  sz=$(($(stat -L -c %s "$in") * 2 / 1000000))
  rm -rf wal
  (ulimit -v $((LIMIT_MB * 1024)); MALLOC_ARENA_MAX=2 "$BIN" import --wal-only wal --collection x $Q --summary-json big_$f.json "$in" "$in" 2>/dev/null)
  row "$f ${sz} MB, ulimit -v ${LIMIT_MB} MB, wal-only" big_$f.json; rm -rf wal
done

# Indexed: embedded.
for f in fvecs jsonl; do
  rm -rf db
  "$BIN" import --collection c --data-dir db --create --distance l2 $Q --summary-json emb_$f.json small.$f 2>/dev/null
  row "$f $NI embedded (indexed)" emb_$f.json
done

# Indexed: HTTP through nearly serve.
rm -rf srv
"$BIN" serve --data-dir srv --port 16399 --log-file srv.log >/dev/null 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null || true' EXIT
sleep 1
for f in fvecs jsonl; do
  "$BIN" import --collection h$f --url http://127.0.0.1:16399 --create --distance l2 $Q --summary-json http_$f.json small.$f 2>/dev/null
  row "$f $NI http (indexed)" http_$f.json
done
# Search latency while importing: the collection holds NI/2 points; import
# the other half while 20 queries/s run (after 5 s of idle measurement).
head -c $((NI / 2 * 4 * (DIM + 1))) small.fvecs > half1.fvecs
tail -c $((NI / 2 * 4 * (DIM + 1))) small.fvecs > half2.fvecs
rm -rf db
"$BIN" import --collection c --data-dir db --create --distance l2 $Q half1.fvecs 2>/dev/null
"$BIN" import --collection c --data-dir db $Q --id-offset $((NI / 2)) --probe-search 20 --probe-idle 5 --summary-json lat_emb.json half2.fvecs 2>/dev/null
"$BIN" import --collection hlat --url http://127.0.0.1:16399 --create --distance l2 $Q half1.fvecs 2>/dev/null
"$BIN" import --collection hlat --url http://127.0.0.1:16399 $Q --id-offset $((NI / 2)) --probe-search 20 --probe-idle 5 --summary-json lat_http.json half2.fvecs 2>/dev/null
for m in emb http; do
  $PY - $m lat_$m.json <<'EOF'
import json, sys
j = json.load(open(sys.argv[2])); l = j["search_latency_ms"]
print("latency %-5s idle p50 %.2f p99 %.2f ms (%d q); during import p50 %.2f p99 %.2f ms (%d q); import %.0f rows/s"
      % (sys.argv[1], l["idle_p50"], l["idle_p99"], l["idle_n"], l["import_p50"], l["import_p99"], l["import_n"], j["rows_per_s"]))
EOF
done
