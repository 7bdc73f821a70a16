#!/usr/bin/env bash
# failover.sh [-r ROUNDS] [-n 3] - measures leader failover on a local
# cluster of processes (scripts/cluster.sh, 127.0.0.1, free ports, temp dir):
# each round SIGKILLs the leader, times how long until a survivor reports a
# new leader, restarts the killed node and waits until it is ready again.
# Prints one line per round and min/median/max. Removes everything it made.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"

ROUNDS=5
N=3
while [ $# -gt 0 ]; do
	case $1 in
	-r) ROUNDS=$2; shift 2 ;;
	-n) N=$2; shift 2 ;;
	*) echo "usage: $0 [-r ROUNDS] [-n NODES]" >&2; exit 2 ;;
	esac
done
BIN=${FLOTILLA_BIN:-$ROOT/bin/flotilla}
[ -x "$BIN" ] || make -s -C "$ROOT" build
export FLOTILLA_BIN=$BIN

DIR=$(mktemp -d /tmp/flotilla-failover.XXXXXX)
cleanup() {
	"$HERE/cluster.sh" stop -d "$DIR" >/dev/null 2>&1 || true
	rm -rf "$DIR"
}
trap cleanup EXIT

# A base port whose four ranges (client, +2000 cluster, +3724 gossip, +4000
# http) are all free.
busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
BASE=""
for _ in $(seq 1 50); do
	b=$((20000 + RANDOM % 20000))
	ok=1
	for off in 0 2000 3724 4000; do
		for i in $(seq 0 $((N - 1))); do busy $((b + off + i)) && ok=0; done
	done
	[ $ok = 1 ] && { BASE=$b; break; }
done
[ -n "$BASE" ] || { echo "no free port range" >&2; exit 1; }

"$HERE/cluster.sh" start -n "$N" -p "$BASE" -d "$DIR" -w 60 >/dev/null
now_ms() { date +%s%3N; }
http() { echo $((BASE + 4000 + $1 - 1)); }
leader_of() {
	curl -fsS --max-time 1 "http://127.0.0.1:$(http "$1")/cluster/status" 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin).get("leader_id") or "")' 2>/dev/null || true
}

TIMES=()
for r in $(seq 1 "$ROUNDS"); do
	L=$(leader_of 1)
	[[ $L =~ ^n[0-9]+$ ]] || { echo "round $r: no leader known to n1" >&2; "$HERE/cluster.sh" status -d "$DIR" >&2; exit 1; }
	li=${L#n}
	pid=$(cat "$DIR/$L.pid")
	t0=$(now_ms)
	kill -KILL "$pid"
	NEW=""
	deadline=$((SECONDS + 30))
	while [ -z "$NEW" ] && [ $SECONDS -lt $deadline ]; do
		for i in $(seq 1 "$N"); do
			[ "$i" = "$li" ] && continue
			l=$(leader_of "$i")
			if [ -n "$l" ] && [ "$l" != "$L" ]; then NEW=$l; break; fi
		done
		[ -z "$NEW" ] && sleep 0.05
	done
	ms=$(($(now_ms) - t0))
	[ -n "$NEW" ] || { echo "round $r: no new leader within 30s of killing $L" >&2; exit 1; }
	TIMES+=("$ms")
	t1=$(now_ms)
	"$HERE/cluster.sh" start -n "$N" -p "$BASE" -d "$DIR" -w 60 >/dev/null 2>&1 || { echo "round $r: $L did not come back" >&2; exit 1; }
	echo "round $r: killed leader $L, new leader $NEW after ${ms} ms; $L ready again after $(($(now_ms) - t1)) ms"
done
printf '%s\n' "${TIMES[@]}" | sort -n | awk '{a[NR]=$1} END {printf "failover over %d rounds: min %d ms, median %d ms, max %d ms\n", NR, a[1], a[int((NR+1)/2)], a[NR]}'
