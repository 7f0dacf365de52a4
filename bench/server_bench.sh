#!/usr/bin/env bash
# HTTP figures for `nearly serve`: batched upsert throughput (Python client,
# one connection), then wrk runs of search/query/upsert requests.
#   bench/server_bench.sh [N=50000] [DIM=128] [SECONDS=10] [CONNECTIONS=8]
# Needs wrk (Debian package) and numpy.  Uses a temporary data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50000}; DIM=${2:-128}; SECS=${3:-10}; CONNS=${4:-8}
command -v wrk >/dev/null || { echo "server_bench: wrk is not installed (apt-get install wrk)"; exit 1; }
[ -x build/nearly ] || make -j2 --no-print-directory build/nearly
WORK=$(mktemp -d /tmp/nearly-srvbench.XXXXXX)
NEARLY_ACCESS_LOG=false build/nearly serve --data-dir "$WORK/data" --port 0 --log-file "$WORK/log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  PORT=$(grep -o '"port":[0-9]*' "$WORK/log" 2>/dev/null | head -1 | cut -d: -f2) && [ -n "$PORT" ] && break
  sleep 0.1
done
URL=http://127.0.0.1:$PORT
echo "# nearly serve at $URL, N=$N DIM=$DIM, $(nproc) CPUs, wrk -t2 -c$CONNS -d${SECS}s"
/usr/bin/python3 bench/server_load.py "$URL" bench "$N" "$DIM" 1000 "$WORK"
for k in query search query_filter upsert_false upsert_true; do
  echo "## $k"
  wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$WORK/$k.lua" "$URL" | grep -E "Requests/sec|Latency|50%|90%|99%|Non-2xx|Socket errors"
done
curl -s "$URL/metrics" | grep -E '^(points_total|memory_resident_bytes|memory_peak_resident_bytes) '
