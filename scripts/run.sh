#!/usr/bin/env bash
# `make run`: starts the Qdrant-compatible server on the default data
# directory (./data) and port 6333, in the foreground; Ctrl-C (SIGINT) or
# SIGTERM stops it cleanly.  Every `nearly serve` setting can be given
# through the environment (NEARLY_DATA_DIR, NEARLY_PORT, NEARLY_HOST,
# NEARLY_API_KEY, NEARLY_READ_ONLY_API_KEY, ...; see `nearly serve --help`);
# extra arguments are passed to `nearly serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/nearly ] || make -j2 --no-print-directory build/nearly
DATA=${NEARLY_DATA_DIR:-./data}
PORT=${NEARLY_PORT:-6333}
HOST=${NEARLY_HOST:-127.0.0.1}
mkdir -p "$DATA"
echo "run: starting nearly serve (data: $DATA); try: curl http://$HOST:$PORT/collections" >&2
exec build/nearly serve --data-dir "$DATA" --port "$PORT" --host "$HOST" --log-format text "$@"
