#!/usr/bin/env bash
# Runs every test suite and ends with one line: "N passed, M failed".
#   scripts/run_tests.sh [--only normal|asan|tsan|python|js]
# Suites:
#   normal  build/tests/test_*            (all C tests)
#   asan    build-asan/tests/test_*       (all C tests under ASan+UBSan, reduced sizes)
#   tsan    build-tsan/tests/test_conc_*  (concurrency tests under TSan)
#   python  tests/python (pytest, Debian's /usr/bin/python3)
#   js      tests/js     (node test runner, official Qdrant JS client)
set -uo pipefail
cd "$(dirname "$0")/.."
ONLY="${2:-}"
[ "${1:-}" = "--only" ] || ONLY=""
PASSED=0; FAILED=0; FAILED_NAMES=()
LOGDIR=$(mktemp -d /tmp/nearly-tests.XXXXXX)

want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

run_c() { # suite bin [env...]
  local suite=$1 bin=$2; shift 2
  local name; name="$suite/$(basename "$bin")"
  local log="$LOGDIR/${suite}_$(basename "$bin").log"
  local start=$SECONDS
  env "$@" "$bin" > "$log" 2>&1
  local rc=$?
  local line; line=$(grep -E '^RESULT [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  local p=0 f=0
  if [ -n "$line" ]; then
    p=$(echo "$line" | awk '{print $2}'); f=$(echo "$line" | awk '{print $4}')
  fi
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crash or sanitizer report
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
  if [ "$f" -ne 0 ]; then
    FAILED_NAMES+=("$name")
    echo "FAIL $name (rc=$rc, ${p} passed, ${f} failed, $((SECONDS-start))s)"
    grep -E '^(FAIL|    )' "$log" | head -20
    tail -30 "$log" | grep -E 'Sanitizer|ERROR|runtime error|SUMMARY' | head -10
  else
    echo "ok   $name ($p tests, $((SECONDS-start))s)"
  fi
}

if want normal; then
  for b in build/tests/test_*; do [ -x "$b" ] && run_c normal "$b"; done
fi
if want asan; then
  for b in build-asan/tests/test_*; do
    [ -x "$b" ] && run_c asan "$b" NY_TEST_SCALE=0.25 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  done
fi
if want tsan; then
  for b in build-tsan/tests/test_conc_*; do
    [ -x "$b" ] && run_c tsan "$b" NY_TEST_SCALE=0.25 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  done
fi
if want python && [ -d tests/python ] && ls tests/python/test_*.py >/dev/null 2>&1; then
  log="$LOGDIR/python.log"
  PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/python > "$log" 2>&1
  rc=$?
  line=$(grep -E '[0-9]+ (passed|failed)' "$log" | tail -1)
  p=$(echo "$line" | grep -oE '[0-9]+ passed' | awk '{print $1}'); p=${p:-0}
  f=$(echo "$line" | grep -oE '[0-9]+ (failed|error)' | awk '{s+=$1} END {print s+0}')
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
  if [ "$f" -ne 0 ]; then FAILED_NAMES+=("python"); echo "FAIL python ($p passed, $f failed)"; tail -40 "$log"; else echo "ok   python ($p tests)"; fi
fi
if want js && [ -x tests/js/run.sh ]; then
  log="$LOGDIR/js.log"
  tests/js/run.sh > "$log" 2>&1
  rc=$?
  p=$(grep -E '^# pass [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
  f=$(grep -E '^# fail [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
  if [ "$f" -ne 0 ]; then FAILED_NAMES+=("js"); echo "FAIL js ($p passed, $f failed)"; tail -60 "$log"; else echo "ok   js ($p tests)"; fi
fi

[ ${#FAILED_NAMES[@]} -eq 0 ] || echo "failed suites: ${FAILED_NAMES[*]} (logs in $LOGDIR)"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
