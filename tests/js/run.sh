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
# clean shutdown: SIGTERM, exit code 0, the database closed and logged
kill -TERM "$PID"
SRC=0
for _ in $(seq 1 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then SRC=124; else wait "$PID"; SRC=$?; fi
if [ "$SRC" -eq 0 ] && grep -q '"msg":"data directory closed"' "$LOG" && grep -q '"msg":"received SIGTERM' "$LOG"; then
  echo "ok - server shuts down cleanly on SIGTERM"; echo "# pass 1"
else
  echo "not ok - server shuts down cleanly on SIGTERM (exit $SRC)"; echo "# fail 1"; tail -20 "$LOG"; RC=1
fi
if grep -q '"status":5[0-9][0-9]' "$LOG"; then
  echo "not ok - no 5xx answers in the access log"; echo "# fail 1"; grep '"status":5' "$LOG" | head; RC=1
else
  echo "ok - no 5xx answers in the access log"; echo "# pass 1"
fi
exit $RC
