#!/usr/bin/env bash
# memlimit_run.sh -- runs a command inside a child cgroup (v1 memory
# controller) with a memory limit, then prints the cgroup's peak usage,
# failcnt and OOM kills.  Page cache (the index file, the on-disk vector and
# graph files) is charged to the cgroup too; the kernel reclaims it under
# the limit, anonymous memory it cannot reclaim (there is no swap).
#
#   bench/memlimit_run.sh LIMIT COMMAND [ARGS...]
#   e.g. bench/memlimit_run.sh 160M build/nearly bench --data DIR --index IDX \
#            --quant int8 --on-disk /tmp/d --graph-on-disk
#
# The child cgroup is created under this process's own memory cgroup (the
# parent's settings are not touched) and removed afterwards.  Exit status:
# the command's; 137 when it was killed (OOM); 3 when cgroups are unusable.
set -u
LIMIT=${1:?usage: bench/memlimit_run.sh LIMIT COMMAND [ARGS...]}
shift
[ $# -ge 1 ] || { echo "usage: bench/memlimit_run.sh LIMIT COMMAND [ARGS...]" >&2; exit 2; }

ROOT=/sys/fs/cgroup/memory
REL=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
if [ ! -d "$ROOT" ] || [ -z "$REL" ] || [ ! -d "$ROOT$REL" ]; then
    echo "memlimit_run: no cgroup v1 memory controller here (need $ROOT and a memory line in /proc/self/cgroup)" >&2
    exit 3
fi
PARENT=$ROOT$REL
CG=$PARENT/nymem.$$
if ! mkdir "$CG" 2>/dev/null; then
    echo "memlimit_run: cannot create a child cgroup in $PARENT (not writable: run as a user allowed to, or use ulimit -v)" >&2
    exit 3
fi
cleanup() { rmdir "$CG" 2>/dev/null || echo "memlimit_run: could not remove $CG" >&2; }
trap cleanup EXIT
if ! echo "$LIMIT" >"$CG/memory.limit_in_bytes" 2>/dev/null; then
    echo "memlimit_run: cannot set memory.limit_in_bytes to $LIMIT in $CG" >&2
    exit 3
fi
echo "memlimit_run: limit $(cat "$CG/memory.limit_in_bytes") bytes ($LIMIT), cgroup $CG" >&2

# The subshell moves itself into the cgroup, then becomes the command.
# memory.max_usage_in_bytes counts page cache (it reaches the limit as soon
# as the files read exceed it), so the anonymous memory ("rss" in
# memory.stat, which cannot be reclaimed without swap) is sampled as well.
( echo $BASHPID >"$CG/cgroup.procs" && exec "$@" ) &
pid=$!
anon=0
while kill -0 "$pid" 2>/dev/null; do
    a=$(awk '$1 == "rss" {print $2}' "$CG/memory.stat" 2>/dev/null)
    [ -n "$a" ] && [ "$a" -gt "$anon" ] && anon=$a
    sleep 0.1
done
wait "$pid"
rc=$?

peak=$(cat "$CG/memory.max_usage_in_bytes")
fail=$(cat "$CG/memory.failcnt")
kills=$(awk '$1 == "oom_kill" {print $2}' "$CG/memory.oom_control")
echo "memlimit_run: exit $rc; peak usage $peak bytes ($((peak >> 20)) MiB, page cache included); peak anonymous (sampled every 0.1 s) $anon bytes ($((anon >> 20)) MiB); failcnt $fail; oom_kill ${kills:-n/a}" >&2
if [ "$rc" -ge 128 ]; then
    echo "memlimit_run: the command was killed by signal $((rc - 128))$([ "${kills:-0}" != 0 ] && echo ' (OOM killer)')" >&2
fi
exit "$rc"
