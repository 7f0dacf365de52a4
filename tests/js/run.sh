#!/usr/bin/env bash
# Starts build/nearly serve on a free port with a temporary data directory
# and drives it with the official Qdrant JS client (tests/js/*.test.mjs,
# node's test runner, TAP output), then stops it with SIGTERM and checks the
# shutdown was clean.  Environment: NEARLY_BIN overrides the binary.
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
BIN=${NEARLY_BIN:-$ROOT/build/nearly}
if [ ! -x "$BIN" ]; then echo "Bail out! $BIN not built"; exit 1; fi
if [ ! -d node_modules/@qdrant/js-client-rest ]; then
  npm ci --no-audit --no-fund --silent >/dev/null 2>&1 || { echo "Bail out! npm ci failed"; exit 1; }
fi
WORK=$(mktemp -d /tmp/nearly-js.XXXXXX)
LOG="$WORK/server.log"
export NEARLY_TEST_KEY="js-test-key-$$"
export NEARLY_TEST_RO_KEY="js-read-only-$$"
NEARLY_API_KEY="$NEARLY_TEST_KEY" NEARLY_READ_ONLY_API_KEY="$NEARLY_TEST_RO_KEY" NEARLY_MAX_REQUEST_SIZE_MB=4 \
  "$BIN" serve --data-dir "$WORK/data" --port 0 --log-file "$LOG" &
PID=$!
cleanup() { kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=""
for _ in $(seq 1 100); do
  PORT=$(grep -o '"msg":"listening".*"port":[0-9]*' "$LOG" 2>/dev/null | grep -o '"port":[0-9]*' | cut -d: -f2)
  [ -n "$PORT" ] && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$PORT" ]; then echo "Bail out! server did not start"; cat "$LOG"; exit 1; fi
export NEARLY_URL="http://127.0.0.1:$PORT"
export NEARLY_DATA_DIR="$WORK/data"
export NEARLY_LOG="$LOG"
node --test --test-reporter=tap --test-concurrency=1 ./*.test.mjs
RC=$?
# clean shutdown: SIGTERM while a large upsert is in flight; that request
# must still succeed, the exit code be 0, the database closed and logged,
# and the points be there after a restart.
H=(-H "api-key: $NEARLY_TEST_KEY" -H 'content-type: application/json')
curl -s -o /dev/null -X PUT "${H[@]}" "$NEARLY_URL/collections/shutdown_test" -d '{"vectors":{"size":128,"distance":"Cosine"}}'
node -e 'let s=1;const r=()=>((s=(s*1103515245+12345)%2147483648)/2147483648)-0.5;
  const pts=[];for(let i=0;i<1000;i++)pts.push({id:i,vector:Array.from({length:128},()=>+r().toFixed(4))});
  process.stdout.write(JSON.stringify({points:pts}))' > "$WORK/big.json"
curl -s --limit-rate 400K -o "$WORK/inflight.out" -w '%{http_code}' -X PUT "${H[@]}" "$NEARLY_URL/collections/shutdown_test/points?wait=true" \
  --data-binary @"$WORK/big.json" > "$WORK/inflight.code" &
CURL=$!
sleep 0.8
kill -TERM "$PID"
SRC=0
for _ in $(seq 1 1200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then SRC=124; else wait "$PID"; SRC=$?; fi
wait "$CURL"
CODE=$(cat "$WORK/inflight.code")
if [ "$SRC" -eq 0 ] && grep -q '"msg":"data directory closed"' "$LOG" && grep -q '"msg":"received SIGTERM' "$LOG"; then
  echo "ok - server shuts down cleanly on SIGTERM"; echo "# pass 1"
else
  echo "not ok - server shuts down cleanly on SIGTERM (exit $SRC)"; echo "# fail 1"; tail -20 "$LOG"; RC=1
fi
SIGLINE=$(grep -n '"msg":"received SIGTERM' "$LOG" | head -1 | cut -d: -f1)
REQLINE=$(grep -n '"path":"/collections/shutdown_test/points"' "$LOG" | head -1 | cut -d: -f1)
if [ "$CODE" = 200 ] && [ -n "$SIGLINE" ] && [ -n "$REQLINE" ] && [ "$REQLINE" -gt "$SIGLINE" ]; then
  echo "ok - the request in flight at SIGTERM completes"; echo "# pass 1"
else
  echo "not ok - the request in flight at SIGTERM completes (HTTP $CODE, SIGTERM at log line $SIGLINE, request done at $REQLINE: $(head -c 300 "$WORK/inflight.out"))"; echo "# fail 1"; RC=1
fi
# restart on the same data: the points written before the shutdown are there
"$BIN" serve --data-dir "$WORK/data" --port 0 --log-file "$WORK/server2.log" &
PID=$!
PORT=""
for _ in $(seq 1 100); do
  PORT=$(grep -o '"port":[0-9]*' "$WORK/server2.log" 2>/dev/null | head -1 | cut -d: -f2); [ -n "$PORT" ] && break; sleep 0.1
done
CNT=$(curl -s -X POST -H 'content-type: application/json' "http://127.0.0.1:$PORT/collections/shutdown_test/points/count" -d '{}' | grep -o '"count":[0-9]*' | cut -d: -f2)
kill -TERM "$PID"; wait "$PID"
if [ "$CNT" = 1000 ]; then
  echo "ok - points written before the shutdown survive a restart"; echo "# pass 1"
else
  echo "not ok - points written before the shutdown survive a restart (count '$CNT')"; echo "# fail 1"; RC=1
fi
if grep -q '"status":5[0-9][0-9]' "$LOG"; then
  echo "not ok - no 5xx answers in the access log"; echo "# fail 1"; grep '"status":5' "$LOG" | head; RC=1
else
  echo "ok - no 5xx answers in the access log"; echo "# pass 1"
fi
exit $RC
