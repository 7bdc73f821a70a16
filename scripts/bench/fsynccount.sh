#!/usr/bin/env bash
# fsynccount.sh - count the sync-to-disk system calls (fsync, fdatasync, sync_file_range) that
# running server processes make while a load command runs, so "messages per sync call"
# (group-commit efficiency) can be compared across brokers. Adapted from the shared peer scripts'
# fsynccount.sh, with strace instead of perf: strace attaches to every thread of the given PIDs
# (-f) and summarises the calls (-c). strace stops each traced thread at every system call, so the
# load runs slower under it: use the counts, not the rate.
#
# Usage: scripts/bench/fsynccount.sh -p "PID [PID...]" -n MSGS [-t SECONDS] -- LOAD_COMMAND...
#   -p PIDS     server processes to watch (e.g. the 3 nodes of a cluster); must be ours
#   -n MSGS     messages the load command publishes (for the per-message ratio)
#   -t SECONDS  upper bound for the load command and for strace (default 300)
# Prints the load command's output on stderr and one line on stdout:
#   fsync=N fdatasync=N sync_file_range=N total=N msgs=MSGS msgs_per_sync=X
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PIDS="" MSGS=0 LIMIT=300
while getopts "p:n:t:" opt; do
	case $opt in
	p) PIDS=$OPTARG ;;
	n) MSGS=$OPTARG ;;
	t) LIMIT=$OPTARG ;;
	*) sed -n '2,15p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
[ -n "$PIDS" ] && [ $# -gt 0 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
command -v strace >/dev/null || { echo "strace is not installed (apt-get install strace)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/fsynccount.XXXXXX)
SPID=""
cleanup() {
	[ -n "$SPID" ] && kill -INT "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
args=()
for p in $PIDS; do args+=(-p "$p"); done
timeout -s INT "$((LIMIT + 30))" strace -c -f -e trace=fsync,fdatasync,sync_file_range -o "$TMP/summary" "${args[@]}" 2>"$TMP/strace.err" &
SPID=$!
# wait until strace has attached to every process (it says so on stderr)
want=$(wc -w <<<"$PIDS")
for ((i = 0; i < 100; i++)); do
	[ "$(grep -c 'attached' "$TMP/strace.err" 2>/dev/null || true)" -ge "$want" ] && break
	kill -0 "$SPID" 2>/dev/null || { cat "$TMP/strace.err" >&2; exit 1; }
	sleep 0.1
done
sleep 0.2
timeout "$LIMIT" "$@" >&2 || echo "load command failed (rc=$?): $*" >&2
sleep 0.3
kill -INT "$SPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true
SPID=""
line=$(python3 "$HERE/jstool.py" strace-count "$TMP/summary")
tot=${line##*total=}
mps=NA
[ "$tot" -gt 0 ] && [ "$MSGS" -gt 0 ] && mps=$(awk -v m="$MSGS" -v t="$tot" 'BEGIN{printf "%.2f", m/t}')
echo "$line msgs=$MSGS msgs_per_sync=$mps"
