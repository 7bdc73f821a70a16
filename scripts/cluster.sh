#!/usr/bin/env bash
# cluster.sh - a local N-node Flotilla cluster of plain processes (no docker)
# on 127.0.0.1.
#
#   scripts/cluster.sh start  [-n 3] [-p 4222] [-d DIR] [-w 30] [-- SERVER FLAGS...]
#   scripts/cluster.sh status [-d DIR]
#   scripts/cluster.sh stop   [-d DIR]
#   scripts/cluster.sh clean  [-d DIR]      stop, then delete DIR
#
# Node i (1..N) is n<i> and listens on
#   clients  BASE+i-1        (4222, 4223, 4224 by default)
#   http     BASE+4000+i-1   (8222, ...)
#   cluster  BASE+2000+i-1   (6222, ...)
#   gossip   BASE+3724+i-1   (7946, ...; TCP and UDP)
# where BASE is -p (default 4222). Every node runs the same command line
# (--join all gossip addresses, --bootstrap-expect N) plus whatever follows
# `--`. Data, logs and pid files live in DIR (default ./data/cluster under
# the repo): DIR/n1/ (data), DIR/n1.log, DIR/n1.pid; DIR/cluster.env
# remembers the layout for status and stop. FLOTILLA_* variables in the
# environment reach every node (e.g. FLOTILLA_LOG_LEVEL=debug).
# FLOTILLA_BIN picks the binary (default bin/flotilla, built if missing).
#
# `start` on a stopped cluster restarts the nodes from their data (they
# rejoin without bootstrapping again); `status` exits 0 only when every
# node answers and all agree on one leader.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"

usage() {
	sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

CMD=${1:-}
[ -n "$CMD" ] || usage
shift
N=3
BASE=4222
DIR=$ROOT/data/cluster
WAIT=30
EXTRA=()
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift 2 ;;
	-p) BASE=$2; shift 2 ;;
	-d) DIR=$2; shift 2 ;;
	-w) WAIT=$2; shift 2 ;;
	--) shift; EXTRA=("$@"); break ;;
	-h | --help) usage ;;
	*) echo "unknown argument: $1" >&2; usage ;;
	esac
done
[[ $N =~ ^[1-9][0-9]?$ ]] || { echo "-n must be 1..99" >&2; exit 2; }
[[ $BASE =~ ^[0-9]+$ ]] && [ "$BASE" -ge 1024 ] && [ $((BASE + 4000 + N)) -le 65535 ] || { echo "-p must leave room for BASE+4000+N <= 65535" >&2; exit 2; }
[ "$CMD" = start ] && mkdir -p "$DIR"
DIR=$(cd "$DIR" 2>/dev/null && pwd || echo "$DIR")
BIN=${FLOTILLA_BIN:-$ROOT/bin/flotilla}

# The layout of a started cluster wins over flags for status and stop.
if [ "$CMD" != start ] && [ -f "$DIR/cluster.env" ]; then
	. "$DIR/cluster.env"
fi

client_port() { echo $((BASE + $1 - 1)); }
http_port() { echo $((BASE + 4000 + $1 - 1)); }
cluster_port() { echo $((BASE + 2000 + $1 - 1)); }
gossip_port() { echo $((BASE + 3724 + $1 - 1)); }

# pid_of I: the pid of node I if it is running (our process), else nothing.
pid_of() {
	local f="$DIR/n$1.pid" p
	[ -f "$f" ] || return 0
	p=$(cat "$f")
	if [ -n "$p" ] && kill -0 "$p" 2>/dev/null && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "--node-id n$1 "; then
		echo "$p"
	fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# summary I: one line about node I from its /cluster/status.
summary() {
	local i=$1 pid js
	pid=$(pid_of "$i")
	js=$(curl -fsS --max-time 2 "http://127.0.0.1:$(http_port "$i")/cluster/status" 2>/dev/null || true)
	python3 - "n$i" "${pid:-}" "$(client_port "$i")" "$(http_port "$i")" "$js" <<'EOF'
import json, sys
name, pid, cport, hport, js = sys.argv[1:]
head = f"{name}  pid {pid or '-':>7}  nats://127.0.0.1:{cport}  http://127.0.0.1:{hport}"
if not js:
    print(f"{head}  {'not running' if not pid else 'no answer'}")
    sys.exit(1)
s = json.loads(js)
members = " ".join(f"{m['id']}:{m['status']}" for m in s.get("members") or [])
voters = ",".join(v["id"] for v in s.get("raft_configuration") or [] if v.get("suffrage") == "Voter")
print(f"{head}  {s.get('state','?'):<9} leader={s.get('leader_id') or '-'} term={s.get('term')} "
      f"applied={s.get('applied_index')}/{s.get('commit_index')}  voters={voters or '-'}  members: {members or '-'}")
print(s.get("leader_id") or "", file=sys.stderr)
EOF
}

# status_all: a line per node, then whether they agree on one leader.
status_all() {
	local i ok=0 out leaders=() tmp
	tmp=$(mktemp)
	for i in $(seq 1 "$N"); do
		if out=$(summary "$i" 2>"$tmp"); then
			leaders+=("$(cat "$tmp")")
		else
			ok=1
		fi
		echo "$out"
	done
	rm -f "$tmp"
	if [ $ok -eq 0 ]; then
		local uniq
		uniq=$(printf '%s\n' "${leaders[@]}" | sort -u)
		if [ -z "$uniq" ] || [ "$(wc -l <<<"$uniq")" -ne 1 ]; then
			echo "no agreed leader: ${leaders[*]:-none}"
			ok=1
		else
			echo "leader: $uniq"
		fi
	fi
	return $ok
}

start() {
	[ -x "$BIN" ] || make -s -C "$ROOT" build
	local i join="" running=0 started=() p
	for i in $(seq 1 "$N"); do
		join+="${join:+,}127.0.0.1:$(gossip_port "$i")"
	done
	for i in $(seq 1 "$N"); do
		[ -n "$(pid_of "$i")" ] && running=$((running + 1))
	done
	if [ -f "$DIR/cluster.env" ] && [ $running -gt 0 ]; then
		# keep the running layout
		. "$DIR/cluster.env"
	fi
	cat >"$DIR/cluster.env" <<EOF
N=$N
BASE=$BASE
EOF
	for i in $(seq 1 "$N"); do
		if p=$(pid_of "$i") && [ -n "$p" ]; then
			log "n$i already running (pid $p)"
			continue
		fi
		for port in $(client_port "$i") $(http_port "$i") $(cluster_port "$i") $(gossip_port "$i"); do
			if port_busy "$port"; then
				echo "port $port for n$i is in use (pick another base with -p)" >&2
				exit 1
			fi
		done
		mkdir -p "$DIR/n$i"
		nohup "$BIN" server --node-id "n$i" --data-dir "$DIR/n$i" \
			--client-addr "127.0.0.1:$(client_port "$i")" --http-addr "127.0.0.1:$(http_port "$i")" \
			--cluster-addr "127.0.0.1:$(cluster_port "$i")" --gossip-addr "127.0.0.1:$(gossip_port "$i")" \
			--join "$join" --bootstrap-expect "$N" "${EXTRA[@]}" >>"$DIR/n$i.log" 2>&1 </dev/null &
		echo $! >"$DIR/n$i.pid"
		started+=("$i")
		log "started n$i (pid $!): nats://127.0.0.1:$(client_port "$i"), log $DIR/n$i.log"
	done
	local deadline=$((SECONDS + WAIT)) notready
	while :; do
		notready=""
		for i in $(seq 1 "$N"); do
			if [ -z "$(pid_of "$i")" ]; then
				echo "n$i exited; last lines of $DIR/n$i.log:" >&2
				tail -20 "$DIR/n$i.log" >&2
				exit 1
			fi
			curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$(http_port "$i")/readyz" 2>/dev/null || notready+=" n$i"
		done
		[ -z "$notready" ] && break
		if [ $SECONDS -ge $deadline ]; then
			echo "not ready after ${WAIT}s:$notready (nodes left running; see $DIR/*.log, stop with: $0 stop -d $DIR)" >&2
			status_all || true
			exit 1
		fi
		sleep 0.2
	done
	status_all
}

stop() {
	local i pids=() p
	for i in $(seq 1 "$N"); do
		p=$(pid_of "$i")
		[ -n "$p" ] && pids+=("$p") && log "stopping n$i (pid $p)"
	done
	# also any node beyond N whose pid file is still around
	for f in "$DIR"/n*.pid; do
		[ -f "$f" ] || continue
		i=${f##*/n}
		i=${i%.pid}
		[[ $i =~ ^[0-9]+$ ]] && [ "$i" -gt "$N" ] && p=$(pid_of "$i") && [ -n "$p" ] && pids+=("$p")
	done
	[ ${#pids[@]} -gt 0 ] && stop_pids "${pids[@]}"
	rm -f "$DIR"/n*.pid
	[ ${#pids[@]} -gt 0 ] || log "no node running in $DIR"
}

case $CMD in
start) start ;;
status) status_all ;;
stop) stop ;;
clean)
	stop
	rm -rf "$DIR"
	log "removed $DIR"
	;;
*) usage ;;
esac
