#!/usr/bin/env bash
# bench-js.sh - JetStream publish and consume throughput of a three-node Flotilla cluster side by
# side with three-node nats-server JetStream clusters (R3, file storage), measured with `nats bench`
# (natscli v0.5.0) in one run on the same machine. A benchmark, not a test: it never fails on
# numbers (it exits 1 only when a nats bench run errors or leaves a wrong count). See docs/benchmarks.md.
#
# Usage: scripts/bench-js.sh [-g GROUPS] [-k SCENARIOS] [-r RUNS] [-s N1] [-a N2] [-c N3] [-m SIZES] [-L "local remote"]
#                            [-N NODES] [-q] [-w] [-F] [-o DIR] [-P DIR] BINARY
#        scripts/bench-js.sh -A [-g GROUPS] [-r RUNS] [-s N1] [-a N2] [-c N3] [-m SIZES] [-L ...] [-N NODES] [-q] [-F]   (A/A calibration)
#   BINARY   the flotilla binary (e.g. ./bin/flotilla after `make build`)
#   -g LIST  scenario groups (default "pub"): pub = the publish scenarios, consume = the consumer
#            scenarios (js consume, js fetch, js ordered); -g "pub consume" runs both
#   -k LIST  only these scenarios of the groups (e.g. -k "js.pub.async js.pub.async.4clients"; names
#            as in results.tsv, without the @SIZE)
#   -m LIST  message sizes of the `js pub async` scenarios (default "128B"), e.g. -m "128B 1KiB"; a
#            size other than 128B shows in the scenario name (js.pub.async@1KiB)
#   -N N     servers per target: 3 (default; R3 streams) or 1 (one `flotilla server` on its
#            single-node defaults and single nats-servers; R1 streams; -g pub, leader-local only, no -w)
#   -r RUNS  runs per scenario, placement and target (default 3); medians are reported
#   -s N1    messages per `js pub sync` run (default 5000)
#   -a N2    messages per `js pub async` run, shared by the clients (default 200000)
#   -c N3    messages in the stream for each consumer run, all read back (default 150000)
#   -L LIST  leader placements (default "local remote"): local = the client is connected to the
#            server that leads the stream (and the consumer), remote = to another server of the cluster
#   -q       quick smoke: 1 run, 500 sync, 20000 async and 20000 consumer messages (not for numbers)
#   -w       also rewrite the sections of docs/benchmarks.md of the groups that ran: publish between
#            <!-- js-bench:start --> and <!-- js-bench:end -->, consume between
#            <!-- js-consume-bench:start --> and <!-- js-consume-bench:end -->
#   -F       also count fsync/fdatasync/sync_file_range calls of each cluster's server processes
#            during a sync publish and an async publish with 1 and with 4 clients (strace; installed
#            with apt-get when missing) -> messages per sync call; these probe runs are not part of
#            the table (fsync.tsv)
#   -o DIR   keep results.tsv (publish), results-consume.tsv, the nats bench outputs and the server logs in DIR
#   -P DIR   after the timed runs, run every scenario once more against flotilla (leader-local) while
#            the stream leader's CPU profile and a delta allocation profile (/debug/pprof/profile
#            and /debug/pprof/allocs with ?seconds=) are taken: DIR/jsN.SCENARIO.{cpu,allocs}.pb.gz
#            (N = -N); the runs go to DIR/jsN-prof.tsv, not into the tables
#   -A       calibration: the "flotilla" target is a third nats-server cluster with
#            sync_interval: always (shows how far a ratio drifts from noise alone)
# Targets, all started fresh in a temp dir and running side by side on 127.0.0.1:
#   flotilla      scripts/cluster.sh start -n 3 (one Raft group: the Raft leader leads every stream);
#                 with -N 1: flotilla server --data-dir D --client-addr .. --http-addr .. --cluster-addr ..
#                 --gossip-addr .. (free ports, otherwise the single-node defaults)
#   nats-default  nats-server v2.15.2, 3 nodes (-N 1: one), JetStream file store, default sync (fsync every 2 min)
#   nats-always   the same with `sync_interval: always` (fsync on every write)
# Scenarios, 128 B messages (-m for async publishes), stream "benchstream" on subject bench.js with 3
# replicas (-N 1: 1):
#   pub:     nats bench js pub sync bench.js --create --purge --replicas 3 --msgs N1
#            nats bench js pub async bench.js --create --purge --replicas 3 --batch 500 --msgs N2 [--clients 4]
#   consume: nats bench js consume --msgs N3 --batch 500 [--clients 4]   (durable nats-bench, explicit acks)
#            nats bench js fetch --msgs N3 --batch 500                   (durable nats-bench, explicit acks)
#            nats bench js ordered --msgs N3                             (ephemeral ordered consumer)
# Before every measurement the stream is deleted and created anew (one throw-away message), its
# leader is placed (nats-server: `nats stream cluster step-down --preferred`; flotilla: the client
# picks the Raft leader's or a follower's port), and --purge empties it. A consumer measurement
# first fills the fresh stream (not measured):
#            nats bench js pub async bench.js --create --purge --replicas 3 --batch 500 --msgs N3
# checks that it holds N3 messages, and on nats-server creates the durable nats-bench itself (same
# config as nats bench, which then only updates it) to move its leader next to the stream leader;
# afterwards `nats consumer info` must show every message delivered once (and acknowledged), and
# the consumer and the stream are removed. Targets are interleaved (rotating order) within every
# run. A run whose stream (or durable consumer) leader was elsewhere is reported but not counted.
# Every command is bounded by `timeout`; only PIDs started here are stopped; the temp dir is
# removed at exit.
# Env: NATS_BIN, NATS_SERVER_BIN (use these binaries instead of the pinned ones from scripts/lib.sh),
#      FLOTILLA_TOOLS (where the pinned tools live / get installed, default ~/.cache/flotilla-tools/bin),
#      BENCH_TIMEOUT (seconds per nats bench command, default 60 + N1/10 + N2/1000 + N3/1000).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
TOOL="$HERE/bench/jstool.py"
SPLICE="$HERE/bench/benchtool.py"
DOC="$ROOT/docs/benchmarks.md"
SUBJ=bench.js
STREAM=benchstream

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

RUNS="" N1="" N2="" N3="" GROUPS_="pub" LOCS="local remote" QUICK="" WRITE="" KEEP="" AA="" FSYNC=""
ONLY="" SIZES="128B" NODES=3 PROF=""
while getopts "g:k:m:N:P:r:s:a:c:L:qwFo:Ah" opt; do
	case $opt in
	g) GROUPS_=$OPTARG ;;
	k) ONLY=$OPTARG ;;
	m) SIZES=$OPTARG ;;
	N) NODES=$OPTARG ;;
	P) PROF=$OPTARG ;;
	r) RUNS=$OPTARG ;;
	s) N1=$OPTARG ;;
	a) N2=$OPTARG ;;
	c) N3=$OPTARG ;;
	L) LOCS=$OPTARG ;;
	q) QUICK=1 ;;
	w) WRITE=1 ;;
	F) FSYNC=1 ;;
	o) KEEP=$OPTARG ;;
	A) AA=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
if [ -n "$QUICK" ]; then
	RUNS=${RUNS:-1} N1=${N1:-500} N2=${N2:-20000} N3=${N3:-20000}
else
	RUNS=${RUNS:-3} N1=${N1:-5000} N2=${N2:-200000} N3=${N3:-150000}
fi
[[ $RUNS =~ ^[1-9][0-9]*$ && $N1 =~ ^[1-9][0-9]*$ && $N2 =~ ^[1-9][0-9]*$ && $N3 =~ ^[1-9][0-9]*$ ]] ||
	{ echo "-r, -s, -a and -c take positive integers" >&2; usage; }
[ $((N2 % 4)) -eq 0 ] || { echo "-a must be a multiple of 4 (4 clients share it)" >&2; exit 2; }
[ $((N3 % 4)) -eq 0 ] || { echo "-c must be a multiple of 4 (4 clients share it)" >&2; exit 2; }
for l in $LOCS; do [[ $l == local || $l == remote ]] || { echo "-L takes 'local' and/or 'remote'" >&2; exit 2; }; done
[[ $NODES == 1 || $NODES == 3 ]] || { echo "-N takes 1 or 3" >&2; exit 2; }
REPL=$NODES
export BENCH_REPLICAS=$REPL # (jstool.py names the replication in its table headers)
if [ "$NODES" = 1 ]; then
	LOCS=local # (one server: the client is always on the stream leader)
	[ -z "$WRITE" ] || { echo "-w writes the three-node sections; -N 1 results go to -o only" >&2; exit 2; }
	[[ " $GROUPS_ " != *" consume "* ]] || { echo "-N 1 runs the publish group only" >&2; exit 2; }
fi
for z in $SIZES; do [[ $z =~ ^[0-9]+(B|KB|KiB|MB|MiB)$ ]] || { echo "-m takes sizes like 128B or 1KiB, not '$z'" >&2; exit 2; }; done
PUB="" CONS=""
for g in $GROUPS_; do
	case $g in
	pub) PUB=1 ;;
	consume) CONS=1 ;;
	*) echo "-g takes 'pub' and/or 'consume'" >&2; exit 2 ;;
	esac
done
[ -n "$PUB$CONS" ] || { echo "-g needs a group" >&2; exit 2; }
[ -z "$FSYNC" ] || [ -n "$PUB" ] || { echo "-F probes publishes: it needs -g pub" >&2; exit 2; }
if [ -n "$AA" ]; then
	[ -z "$WRITE" ] || { echo "-A (calibration) does not write docs" >&2; exit 2; }
	[ -z "$PROF" ] || { echo "-A (calibration) has no flotilla to profile" >&2; exit 2; }
	BIN="" F=nats-always-B
else
	[ $# -eq 1 ] || usage
	[ -x "$1" ] || { echo "not an executable: $1" >&2; exit 2; }
	BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
	F=flotilla
fi
D=nats-default A=nats-always
TARGETS=("$F" "$D" "$A")
TO=${BENCH_TIMEOUT:-$((60 + N1 / 10 + N2 / 1000 + N3 / 1000))}
need() { command -v "$1" >/dev/null 2>&1 || { echo "missing tool: $1" >&2; exit 2; }; }
for t in go curl python3 timeout; do need "$t"; done
if [ -n "$FSYNC" ] && ! command -v strace >/dev/null 2>&1; then
	log "-F: installing strace with apt-get"
	if [ "$(id -u)" = 0 ]; then
		timeout 300 apt-get install -y strace >&2 || { timeout 300 apt-get update >&2 && timeout 300 apt-get install -y strace >&2; }
	else
		timeout 300 sudo -n apt-get install -y strace >&2
	fi
	need strace
fi

NATS=${NATS_BIN:-$(nats_cli)}
NATS_SERVER=${NATS_SERVER_BIN:-$(nats_server)}
NV=$("$NATS" --version 2>&1 || true)
SV=$("$NATS_SERVER" --version 2>&1 || true)
SV=${SV#nats-server: }
[ "$NV" = "$NATSCLI_VERSION" ] || { echo "nats CLI at $NATS is '$NV', need $NATSCLI_VERSION (never v0.5.1)" >&2; exit 2; }
[[ $SV == *"$NATS_SERVER_VERSION"* ]] || log "WARNING: nats-server is '$SV', expected $NATS_SERVER_VERSION"

TMP=$(mktemp -d /tmp/flotilla-benchjs.XXXXXX)
OUT=${KEEP:-$TMP/out}
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
if [ -n "$PROF" ]; then
	mkdir -p "$PROF"
	PROF=$(cd "$PROF" && pwd)
fi
RES="$OUT/results.tsv"          # publish scenarios
RESC="$OUT/results-consume.tsv" # consumer scenarios
FS="$OUT/fsync.tsv"
for f in "$RES" "$RESC"; do
	printf 'target\tlocality\tscenario\trun\tmsgs_per_s\tp50_us\tp99_us\tclient_server\tstream_leader\tnote\tload1\tcommand\tconsumer_leader\tcheck\n' >"$f"
done
rm -f "$FS" "$OUT/failures.txt"

declare -A KIND CPORT HPORT CDIR
SRV_PIDS=() # nats-server processes (flotilla nodes are stopped through scripts/cluster.sh)
FLOTILLA_DIRS=()
# shellcheck disable=SC2317 # (run by the EXIT trap, which shellcheck does not follow)
cleanup() {
	local rc=$? d f
	for d in "${FLOTILLA_DIRS[@]}"; do
		FLOTILLA_BIN=$BIN timeout 60 bash "$HERE/cluster.sh" stop -d "$d" >/dev/null 2>&1 || true
		# belt and braces: a node whose pid file is still there and whose command line is ours
		for f in "$d"/n*.pid; do
			[ -f "$f" ] || continue
			p=$(cat "$f")
			if [ -n "$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "--data-dir $d/"; then stop_pids "$p"; fi
		done
	done
	[ ${#PROF_PIDS[@]} -gt 0 ] && stop_pids "${PROF_PIDS[@]}"
	[ ${#SRV_PIDS[@]} -gt 0 ] && stop_pids "${SRV_PIDS[@]}"
	if [ -n "$KEEP" ]; then
		for d in "$TMP"/*/; do
			for f in "$d"*.log "$d"*.conf; do [ -f "$f" ] && cp "$f" "$OUT/logs/$(basename "$d").$(basename "$f")"; done
		done 2>/dev/null || true
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- targets ----
start_flotilla() { # start_flotilla LABEL
	local t=$1 d="$TMP/$1" base="" b i ok
	[ "$NODES" = 1 ] && { start_flotilla1 "$t"; return; }
	for _ in $(seq 1 20); do
		# below the ephemeral range (32768+) so that free_port picks for nats-server cannot collide
		b=$((20000 + RANDOM % 6900)) ok=1
		for i in 0 1 2; do
			for p in $((b + i)) $((b + 2000 + i)) $((b + 3724 + i)) $((b + 4000 + i)); do port_free "$p" || ok=0; done
		done
		if [ $ok = 1 ]; then base=$b; break; fi
	done
	[ -n "$base" ] || { echo "no free port range for flotilla" >&2; return 1; }
	mkdir -p "$d"
	FLOTILLA_DIRS+=("$d")
	if ! FLOTILLA_BIN=$BIN timeout 120 bash "$HERE/cluster.sh" start -n 3 -p "$base" -d "$d" -w 60 >"$TMP/$t.start.log" 2>&1; then
		cat "$TMP/$t.start.log" >&2
		for i in 1 2 3; do echo "--- $d/n$i.log (last 20 lines)" >&2; tail -20 "$d/n$i.log" >&2 || true; done
		return 1
	fi
	KIND[$t]=flotilla CDIR[$t]=$d
	for i in 1 2 3; do CPORT[$t/n$i]=$((base + i - 1)) HPORT[$t/n$i]=$((base + 4000 + i - 1)); done
}

# start_flotilla1 LABEL: one node on the single-node defaults (free ports instead of the default ones)
start_flotilla1() {
	local t=$1 d="$TMP/$1" cp hp
	mkdir -p "$d"
	cp=$(free_port) hp=$(free_port)
	"$BIN" server --data-dir "$d/n1" --client-addr "127.0.0.1:$cp" --http-addr "127.0.0.1:$hp" \
		--cluster-addr "127.0.0.1:$(free_port)" --gossip-addr "127.0.0.1:$(free_port)" >"$d/n1.log" 2>&1 &
	SRV_PIDS+=($!)
	eval "PID_${t//-/_}_1=$!"
	wait_http "http://127.0.0.1:$hp/readyz" 60 || { tail -30 "$d/n1.log" >&2; return 1; }
	KIND[$t]=flotilla CDIR[$t]=$d CPORT[$t/n1]=$cp HPORT[$t/n1]=$hp
}

start_nats() { # start_nats LABEL SYNC(default|always)
	local t=$1 sync=$2 d="$TMP/$1" i routes="" cp rp
	mkdir -p "$d"
	for ((i = 1; i <= NODES; i++)); do
		cp=$(free_port) rp=$(free_port)
		CPORT[$t/n$i]=$cp
		eval "rp$i=$rp"
		routes+="nats-route://127.0.0.1:$rp, "
	done
	routes=${routes%, }
	for ((i = 1; i <= NODES; i++)); do
		rp=$(eval "echo \$rp$i")
		{
			echo "server_name: n$i"
			echo "listen: 127.0.0.1:${CPORT[$t/n$i]}"
			echo "jetstream {"
			echo "  store_dir: \"$d/n$i\""
			echo "  max_memory_store: 256MB"
			echo "  max_file_store: 8GB"
			[ "$sync" = always ] && echo "  sync_interval: always"
			echo "}"
			if [ "$NODES" -gt 1 ]; then
				echo "cluster {"
				echo "  name: bench"
				echo "  listen: 127.0.0.1:$rp"
				echo "  routes: [$routes]"
				echo "}"
			fi
		} >"$d/n$i.conf"
		"$NATS_SERVER" -c "$d/n$i.conf" >"$d/n$i.log" 2>&1 &
		SRV_PIDS+=($!)
		eval "PID_${t//-/_}_$i=$!"
	done
	for ((i = 1; i <= NODES; i++)); do wait_port 127.0.0.1 "${CPORT[$t/n$i]}" 30 || { tail -20 "$d/n$i.log" >&2; return 1; }; done
	KIND[$t]=nats CDIR[$t]=$d
}

server_pids() { # server_pids LABEL -> the server PIDs
	local t=$1 i
	if [ "${KIND[$t]}" = flotilla ] && [ "$NODES" = 3 ]; then
		cat "${CDIR[$t]}"/n[123].pid | tr '\n' ' '
	else
		for ((i = 1; i <= NODES; i++)); do eval "printf '%s ' \$PID_${t//-/_}_$i"; done
	fi
}

url() { echo "nats://127.0.0.1:${CPORT[$1/$2]}"; } # url LABEL NODE
nb() { # nb LABEL NODE ARGS... (bounded nats CLI call)
	local t=$1 n=$2
	shift 2
	timeout 60 "$NATS" -s "$(url "$t" "$n")" --no-context "$@"
}
# (with one server there is nothing to place: every leader is n1)
stream_leader() {
	if [ "$NODES" = 1 ]; then echo n1; return; fi
	nb "$1" "$2" stream info "$STREAM" --json 2>/dev/null | python3 "$TOOL" json-leader || echo -
}
consumer_leader() {
	if [ "$NODES" = 1 ]; then echo n1; return; fi
	nb "$1" "$2" consumer info "$STREAM" "$3" --json 2>/dev/null | python3 "$TOOL" json-leader || echo -
}
raft_leader() { # raft_leader LABEL: the Raft leader as seen by the first node that answers
	local i l
	if [ "$NODES" = 1 ]; then echo n1; return; fi
	for i in 1 2 3; do
		l=$(curl -fsS --max-time 2 "http://127.0.0.1:${HPORT[$1/n$i]}/cluster/status" 2>/dev/null | python3 "$TOOL" raft-leader || true)
		[ -n "$l" ] && [ "$l" != - ] && { echo "$l"; return 0; }
	done
	echo -
}

js_ready() { # js_ready LABEL: wait until an R3 file stream can be created
	local t=$1 i
	for ((i = 0; i < 120; i++)); do
		if nb "$t" n1 stream add benchprobe --subjects benchprobe.x --storage file --replicas "$REPL" --defaults >/dev/null 2>&1; then
			nb "$t" n1 stream rm benchprobe -f >/dev/null 2>&1 || true
			return 0
		fi
		sleep 0.5
	done
	echo "JetStream not ready on $t" >&2
	return 1
}

log "starting the targets in $TMP"
if [ -n "$AA" ]; then start_nats "$F" always; else start_flotilla "$F"; fi
start_nats "$D" default
start_nats "$A" always
for t in "${TARGETS[@]}"; do js_ready "$t"; done
log "ready: $(for t in "${TARGETS[@]}"; do printf '%s %s  ' "$t" "$(url "$t" n1)"; done)"

# ---- one measurement ----
FAILS=()
load1() { cut -d' ' -f1 /proc/loadavg; }
ROWS=$RES # the results file row() appends to (set per measurement)
row() { # row TARGET LOC SCEN RUN RATE P50 P99 CLIENT STREAM_LEADER NOTE LOAD1 COMMAND [CONSUMER_LEADER CHECK]
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${@:1:12}" "${13:--}" "${14:--}" >>"$ROWS"
}
fail_note() { # fail_note TARGET LOC SCEN RUN NOTE LOGFILE [START END]
	local t=$1 i
	FAILS+=("$1 $2 $3 run $4: $5")
	{
		echo "---- $1 leader-$2 $3 run $4: $5"
		echo "nats bench output ($(basename "$6")):"
		tail -15 "$6" 2>/dev/null
		if [ "${KIND[$t]}" = flotilla ] && [ $# -ge 8 ]; then
			echo "-- warn/error lines of the flotilla node logs from $7 to $8 (at most 40):"
			python3 "$TOOL" logwindow "$7" "$8" "${CDIR[$t]}"/n[123].log 2>/dev/null | tail -40
			for ((i = 1; i <= NODES; i++)); do
				echo "-- tail of n$i.log:"
				tail -5 "${CDIR[$t]}/n$i.log" 2>/dev/null
			done
		fi
	} >>"$OUT/failures.txt"
	log "FAIL $1 leader-$2 $3 run $4: $5"
}

# prepare TARGET LOC -> "CLIENT_NODE WANTED_LEADER": a fresh R3 stream whose leader is placed
prepare() {
	local t=$1 loc=$2 want client i l adm
	if [ "${KIND[$t]}" = flotilla ]; then
		adm=$(raft_leader "$t")
		[ "$adm" = - ] && adm=n1
	else
		adm=n1
	fi
	nb "$t" "$adm" stream rm "$STREAM" -f >/dev/null 2>&1 || true
	if nb "$t" "$adm" stream info "$STREAM" >/dev/null 2>&1; then log "WARNING: $t still has $STREAM after 'stream rm'"; fi
	nb "$t" "$adm" bench js pub sync "$SUBJ" --create --replicas "$REPL" --msgs 1 --no-progress >"$TMP/create.log" 2>&1 ||
		{ log "$t: stream create failed: $(tail -3 "$TMP/create.log" | tr '\n' ' ')"; echo "- -"; return 0; }
	if [ "${KIND[$t]}" = flotilla ]; then
		# one Raft group: the stream leader is the Raft leader; the client picks its server
		want=$(raft_leader "$t")
		[ "$want" = - ] && { log "$t: no Raft leader"; echo "- -"; return 0; }
		client=$want
		if [ "$loc" = remote ]; then
			for i in 1 2 3; do [ "n$i" != "$want" ] && { client=n$i; break; }; done
		fi
	else
		client=n1 want=n1
		[ "$loc" = remote ] && want=n2
		for ((i = 0; i < 10; i++)); do
			[ "$(stream_leader "$t" n1)" = "$want" ] && break
			nb "$t" n1 stream cluster step-down "$STREAM" --preferred "$want" -f >/dev/null 2>&1 || true
			sleep 1
		done
	fi
	echo "$client $want"
}

# prof_begin TARGET NODE: during a profile run (-P; PROF_AT = "SECONDS FILE_BASE"), start the
# profiles of flotilla node NODE (the stream leader) right before the measured command
prof_begin() {
	local secs base
	[ -n "${PROF_AT:-}" ] && [ "${KIND[$1]}" = flotilla ] || return 0
	read -r secs base <<<"$PROF_AT"
	prof_start "http://127.0.0.1:${HPORT[$1/$2]}" "$secs" "$base"
}

measure() { # measure TARGET LOC SCEN RUN
	local t=$1 loc=$2 sc=$3 run=$4 lf="$OUT/logs/$1.$2.$3.$4" rc=0 r p50 p99 client want l0 l1 ld ts0 ts1 note=ok
	local args size=128B
	ROWS=${PROF_ROWS:-$RES}
	[[ $sc == *@* ]] && size=${sc#*@}
	case ${sc%@*} in
	js.pub.sync) args=(bench js pub sync "$SUBJ" --create --purge --replicas "$REPL" --msgs "$N1" --no-progress) ;;
	js.pub.async) args=(bench js pub async "$SUBJ" --create --purge --replicas "$REPL" --batch 500 --size "$size" --msgs "$N2" --no-progress) ;;
	js.pub.async.4clients) args=(bench js pub async "$SUBJ" --create --purge --replicas "$REPL" --batch 500 --size "$size" --clients 4 --msgs "$N2" --no-progress) ;;
	esac
	read -r client want < <(prepare "$t" "$loc")
	if [ "$client" = - ]; then
		cp "$TMP/create.log" "$lf"
		fail_note "$t" "$loc" "$sc" "$run" "could not create the stream or find its leader" "$lf"
		row "$t" "$loc" "$sc" "$run" FAIL NA NA - - "stream create failed or no leader" "$(load1)" "nats ${args[*]}"
		return 0
	fi
	l0=$(stream_leader "$t" "$client")
	ld=$(load1)
	log "$t | leader-$loc | $sc | run $run | client on $client, stream leader $l0"
	prof_begin "$t" "$want"
	ts0=$(date -u +%FT%T.%3NZ)
	timeout "$TO" "$NATS" -s "$(url "$t" "$client")" --no-context "${args[@]}" >"$lf" 2>&1 || rc=$?
	ts1=$(date -u +%FT%T.%3NZ)
	prof_wait
	l1=$(stream_leader "$t" "$client")
	read -r r p50 p99 < <(python3 "$TOOL" parse "$lf")
	if [ $rc -ne 0 ] || [ "$r" = NA ]; then
		note="nats bench rc=$rc"
		[ $rc -eq 124 ] && note="nats bench timed out after ${TO}s"
		fail_note "$t" "$loc" "$sc" "$run" "$note" "$lf" "$ts0" "$ts1"
		r=FAIL
	elif [ "$l0" != "$want" ] || [ "$l1" != "$want" ]; then
		note="stream leader $l0 before / $l1 after the run, wanted $want (not counted)"
		log "$t: $note"
	fi
	row "$t" "$loc" "$sc" "$run" "$r" "$p50" "$p99" "$client" "$l1" "$note" "$ld" "nats ${args[*]}"
	nb "$t" "$client" stream rm "$STREAM" -f >/dev/null 2>&1 || true
}

# place_durable TARGET NODE CLIENTS: nats-server puts a new consumer's leader on any server of the
# stream, so create the durable nats-bench here with the config nats bench asks for (nats bench then
# only updates it, turning the inactive threshold back to its 10 s) and move its leader to NODE.
place_durable() {
	local t=$1 want=$2 n=$3 i
	if ! nb "$t" n1 consumer add "$STREAM" nats-bench --pull --deliver all --ack explicit --replay instant \
		--max-pending $((500 * n)) --inactive-threshold 60s --defaults >"$TMP/cadd.log" 2>&1; then
		log "$t: consumer add failed: $(tail -3 "$TMP/cadd.log" | tr '\n' ' ')"
		return 0
	fi
	for ((i = 0; i < 10; i++)); do
		[ "$(consumer_leader "$t" n1 nats-bench)" = "$want" ] && return 0
		nb "$t" n1 consumer cluster step-down "$STREAM" nats-bench --preferred "$want" -f >/dev/null 2>&1 || true
		sleep 1
	done
}

# consumer_state TARGET NODE NAME LAST ACKED -> "LEADER STATE DETAIL" (jstool.py consumer-check);
# explicit acks are fire-and-forget, so give the last ones a moment to be applied
consumer_state() {
	local i out
	for ((i = 0; i < 10; i++)); do
		out=$(nb "$1" "$2" consumer info "$STREAM" "$3" --json 2>/dev/null | python3 "$TOOL" consumer-check "$4" "$5" || true)
		[[ $out == *" acks-behind "* ]] || break
		sleep 0.5
	done
	echo "$out"
}

measure_consumer() { # measure_consumer TARGET LOC SCEN RUN
	local t=$1 loc=$2 sc=$3 run=$4 lf="$OUT/logs/$1.$2.$3.$4" rc=0 r p50 p99 client want l0 l1 ld ts0 ts1 note=ok
	local args clients=1 acked=1 msgs last cname cl=- state=- detail=- check=-
	ROWS=${PROF_ROWS:-$RESC}
	case $sc in
	js.consume) args=(bench js consume --msgs "$N3" --batch 500 --no-progress) ;;
	js.consume.4clients) args=(bench js consume --msgs "$N3" --batch 500 --clients 4 --no-progress) clients=4 ;;
	js.fetch) args=(bench js fetch --msgs "$N3" --batch 500 --no-progress) ;;
	js.ordered) args=(bench js ordered --msgs "$N3" --no-progress) acked=0 ;;
	esac
	read -r client want < <(prepare "$t" "$loc")
	if [ "$client" = - ]; then
		cp "$TMP/create.log" "$lf"
		fail_note "$t" "$loc" "$sc" "$run" "could not create the stream or find its leader" "$lf"
		row "$t" "$loc" "$sc" "$run" FAIL NA NA - - "stream create failed or no leader" "$(load1)" "nats ${args[*]}"
		return 0
	fi
	ts0=$(date -u +%FT%T.%3NZ)
	timeout "$TO" "$NATS" -s "$(url "$t" "$client")" --no-context bench js pub async "$SUBJ" --create --purge --replicas "$REPL" \
		--batch 500 --msgs "$N3" --no-progress >"$lf.fill" 2>&1 || rc=$?
	read -r msgs last < <(nb "$t" "$client" stream info "$STREAM" --json 2>/dev/null | python3 "$TOOL" stream-state)
	if [ $rc -ne 0 ] || [ "$msgs" != "$N3" ]; then
		fail_note "$t" "$loc" "$sc" "$run" "filling the stream: rc=$rc, it holds $msgs messages, wanted $N3" "$lf.fill" "$ts0" "$(date -u +%FT%T.%3NZ)"
		row "$t" "$loc" "$sc" "$run" FAIL NA NA "$client" - "fill failed" "$(load1)" "nats ${args[*]}"
		nb "$t" "$client" stream rm "$STREAM" -f >/dev/null 2>&1 || true
		return 0
	fi
	# the stream is new, so this normally finds nothing: no consumer state may carry over
	nb "$t" "$client" consumer rm "$STREAM" nats-bench -f >/dev/null 2>&1 || true
	[ "$sc" != js.ordered ] && [ "${KIND[$t]}" = nats ] && place_durable "$t" "$want" "$clients"
	l0=$(stream_leader "$t" "$client")
	ld=$(load1)
	log "$t | leader-$loc | $sc | run $run | client on $client, stream leader $l0, $msgs messages"
	prof_begin "$t" "$want"
	ts0=$(date -u +%FT%T.%3NZ)
	timeout "$TO" "$NATS" -s "$(url "$t" "$client")" --no-context "${args[@]}" >"$lf" 2>&1 || rc=$?
	ts1=$(date -u +%FT%T.%3NZ)
	prof_wait
	l1=$(stream_leader "$t" "$client")
	cname=nats-bench
	# the ordered consumer is the stream's only one; it stays until its 10 s inactive threshold
	[ "$sc" = js.ordered ] && cname=$(nb "$t" "$client" consumer ls "$STREAM" -n 2>/dev/null | head -1 || true)
	[ -n "$cname" ] && read -r cl state detail < <(consumer_state "$t" "$client" "$cname" "$last" "$acked")
	read -r r p50 p99 < <(python3 "$TOOL" parse "$lf")
	if [ $rc -ne 0 ] || [ "$r" = NA ]; then
		note="nats bench rc=$rc"
		[ $rc -eq 124 ] && note="nats bench timed out after ${TO}s"
		fail_note "$t" "$loc" "$sc" "$run" "$note; consumer $cname afterwards: $state $detail" "$lf" "$ts0" "$ts1"
		r=FAIL
	elif [ "$state" != ok ] && [ "$state" != acks-behind ]; then
		note="consumer $cname afterwards: $state $detail"
		fail_note "$t" "$loc" "$sc" "$run" "$note" "$lf" "$ts0" "$ts1"
		r=FAIL
	elif [ "$l0" != "$want" ] || [ "$l1" != "$want" ]; then
		note="stream leader $l0 before / $l1 after the run, wanted $want (not counted)"
		log "$t: $note"
	elif [ "$cl" != "$want" ] && { [ "$sc" != js.ordered ] || [ "${KIND[$t]}" = flotilla ]; }; then
		# (nats-server places the R1 ordered consumer on any server; where it was is recorded)
		note="consumer leader $cl, wanted $want (not counted)"
		log "$t: $note"
	fi
	[ "$state" = acks-behind ] && check="acks-behind $detail" && log "$t: $check"
	row "$t" "$loc" "$sc" "$run" "$r" "$p50" "$p99" "$client" "$l1" "$note" "$ld" "nats ${args[*]}" "$cl" "$check"
	[ -n "$cname" ] && { nb "$t" "$client" consumer rm "$STREAM" "$cname" -f >/dev/null 2>&1 || true; }
	nb "$t" "$client" stream rm "$STREAM" -f >/dev/null 2>&1 || true
}

# CPU accounting (jiffies): the whole machine from /proc/stat; this benchmark = its servers (alive) +
# this script and its reaped children (nats bench, curl, python). The rest is other work.
cpu_machine() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $9}' /proc/stat; } # busy steal
cpu_ours() {
	local p s=0 v t
	for t in "${TARGETS[@]}"; do
		for p in $(server_pids "$t"); do
			v=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)
			s=$((s + ${v:-0}))
		done
	done
	v=$(awk '{sub(/^.*\) /, ""); print $12 + $13 + $14 + $15}' /proc/$$/stat)
	echo $((s + v))
}
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$SECONDS
read -r CB0 CS0 < <(cpu_machine)
CO0=$(cpu_ours)
W0=$(date +%s.%N)
SCENS=()
if [ -n "$PUB" ]; then
	SCENS+=(js.pub.sync)
	for z in $SIZES; do
		if [ "$z" = 128B ]; then SCENS+=(js.pub.async js.pub.async.4clients); else SCENS+=("js.pub.async@$z" "js.pub.async.4clients@$z"); fi
	done
fi
[ -n "$CONS" ] && SCENS+=(js.consume js.consume.4clients js.fetch js.ordered)
if [ -n "$ONLY" ]; then
	keep=()
	for sc in "${SCENS[@]}"; do [[ " $ONLY " == *" ${sc%@*} "* ]] && keep+=("$sc"); done
	[ ${#keep[@]} -gt 0 ] || { echo "-k '$ONLY' leaves no scenario of -g '$GROUPS_'" >&2; exit 2; }
	SCENS=("${keep[@]}")
fi
declare -A GSECS=([pub]=0 [consume]=0) # seconds spent per group
k=0
for ((run = 1; run <= RUNS; run++)); do
	for loc in $LOCS; do
		for sc in "${SCENS[@]}"; do
			s0=$SECONDS
			# rotate the order of the targets so that machine noise is spread over them
			for j in 0 1 2; do
				if [[ $sc == js.pub.* ]]; then
					measure "${TARGETS[$(((k + j) % 3))]}" "$loc" "$sc" "$run"
				else
					measure_consumer "${TARGETS[$(((k + j) % 3))]}" "$loc" "$sc" "$run"
				fi
			done
			if [[ $sc == js.pub.* ]]; then g=pub; else g=consume; fi
			GSECS[$g]=$((GSECS[$g] + SECONDS - s0))
			k=$((k + 1))
		done
	done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$((SECONDS - T0))
read -r CB1 CS1 < <(cpu_machine)
CO1=$(cpu_ours)
W1=$(date +%s.%N)
# shares of the machine's CPU time (all CPUs) during the measurements, in percent: ours other steal
read -r PCT_OURS PCT_OTHER PCT_STEAL < <(awk -v b="$((CB1 - CB0))" -v o="$((CO1 - CO0))" -v st="$((CS1 - CS0))" \
	-v w="$(awk -v a="$W0" -v b="$W1" 'BEGIN {print b - a}')" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
	'BEGIN { t = w * hz * n; if (t <= 0) t = 1; x = (b - o) / t * 100; if (x < 0) x = 0; printf "%.0f %.0f %.0f\n", o / t * 100, x, st / t * 100 }')

# ---- optional profile runs (-P): one more leader-local run per scenario against flotilla ----
if [ -n "$PROF" ]; then
	PROF_ROWS="$PROF/js$NODES-prof.tsv"
	head -1 "$RES" >"$PROF_ROWS"
	for sc in "${SCENS[@]}"; do
		case ${sc%@*} in
		js.pub.sync) n=$N1 f=$RES ;;
		js.pub.*) n=$N2 f=$RES ;;
		*) n=$N3 f=$RESC ;;
		esac
		secs=$(prof_secs "$n" "$(python3 "$TOOL" median "$f" "$F" local "$sc")")
		log "profile run: $F | $sc (${secs} s profiles of the stream leader)"
		PROF_AT="$secs $PROF/js$NODES.$sc"
		if [[ $sc == js.pub.* ]]; then measure "$F" local "$sc" prof; else measure_consumer "$F" local "$sc" prof; fi
	done
	PROF_AT="" PROF_ROWS=""
fi

# ---- optional fsync probe ----
if [ -n "$FSYNC" ]; then
	printf 'target\tmode\tmsgs\tfsync\tfdatasync\tsync_file_range\ttotal\tmsgs_per_sync\trate_under_strace\n' >"$FS"
	for t in "${TARGETS[@]}"; do
		for mode in sync async async4; do
			n=$((N1 < 2000 ? N1 : 2000))
			extra=()
			[ $mode = async ] && n=$((N2 < 40000 ? N2 : 40000)) extra=(--batch 500)
			[ $mode = async4 ] && n=$((N2 < 40000 ? N2 : 40000)) extra=(--batch 500 --clients 4)
			read -r client want < <(prepare "$t" local)
			[ "$client" = - ] && continue
			lf="$OUT/logs/$t.fsync.$mode"
			# shellcheck disable=SC2046
			line=$(bash "$HERE/bench/fsynccount.sh" -p "$(server_pids "$t")" -n "$n" -t "$TO" -- \
				"$NATS" -s "$(url "$t" "$client")" --no-context bench js pub "${mode%4}" "$SUBJ" --create --purge --replicas "$REPL" "${extra[@]}" --msgs "$n" --no-progress 2>"$lf" || true)
			log "$t fsync probe ($mode, $n msgs): $line"
			label="js pub ${mode%4}"
			[ $mode = async4 ] && label="js pub async --clients 4"
			kv() { tr ' ' '\n' <<<"$line" | awk -F= -v k="$1" '$1==k {print $2}'; }
			read -r rate _ < <(python3 "$TOOL" parse "$lf")
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$label" "$n" "$(kv fsync)" "$(kv fdatasync)" \
				"$(kv sync_file_range)" "$(kv total)" "$(kv msgs_per_sync)" "$rate" >>"$FS"
			nb "$t" "$client" stream rm "$STREAM" -f >/dev/null 2>&1 || true
		done
	done
fi

# ---- report ----
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || true)
fsys=$(df -T "$TMP" 2>/dev/null | awk 'NR==2 {print $2}' || true)
# how many 4 KiB appends + fdatasync per second one thread gets from the disk the stores live on
dsyncs=$(timeout 60 python3 -c '
import os, sys, time
p = sys.argv[1] + "/dsync.probe"
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
b = b"x" * 4096
n, t0 = 0, time.monotonic()
while time.monotonic() - t0 < 2:
    os.write(fd, b)
    os.fdatasync(fd)
    n += 1
print(f"{n / (time.monotonic() - t0):,.0f}")
os.close(fd)
os.unlink(p)' "$TMP" 2>/dev/null || echo "?")
if [ -n "$AA" ]; then FV="(A/A calibration: no flotilla)"; else FV=$("$BIN" version 2>/dev/null || "$BIN" --version 2>/dev/null || echo unknown); fi

# notes RESULTS SCENARIO_PREFIX...: failed runs and runs not counted (of the scenarios with these
# prefixes), a busy-machine warning, the machine and the tools
notes() {
	local res=$1 f p moved flagged lmin lmax n=""
	shift
	local mine=()
	for f in "${FAILS[@]}"; do
		for p in "$@"; do [[ $f == *" $p"* ]] && { mine+=("$f"); break; }; done
	done
	if [ ${#mine[@]} -gt 0 ]; then
		n+=$'\n\nFailed runs (not counted in the medians; details in failures.txt with -o):\n'
		for f in "${mine[@]}"; do n+=$'\n'"- $f"; done
	fi
	moved=$(awk -F'\t' 'NR>1 && $5 != "FAIL" && $10 != "ok" {print "- " $1 " leader-" $2 " " $3 " run " $4 ": " $10}' "$res")
	[ -n "$moved" ] && n+=$'\n\nRuns not counted because a leader was elsewhere:\n\n'"$moved"
	flagged=$(awk -F'\t' 'NR>1 && $5 != "FAIL" && $14 != "-" && $14 != "" {print "- " $1 " leader-" $2 " " $3 " run " $4 ": " $14}' "$res")
	[ -n "$flagged" ] && n+=$'\n\nRuns counted, but the consumer had not applied every ack 5 s after the end:\n\n'"$flagged"
	if [ "$PCT_OTHER" -ge 15 ] || [ "$PCT_STEAL" -ge 15 ]; then
		n+=$'\n\n'"**The machine was busy**: other processes used $PCT_OTHER% of its CPU time during the measurements"
		n+=" (steal $PCT_STEAL%), so these numbers are rough; rerun on a quiet machine before reading anything into"
		n+=" small ratio changes."
	fi
	# (the load average is no measure of other work here: threads waiting in fsync count as load)
	read -r lmin lmax < <(awk -F'\t' 'NR>1 {print $11}' "$res" | sort -g | awk '{a[NR]=$1} END {if (NR) printf "%s %s\n", a[1], a[NR]; else print "? ?"}')
	printf '%s\n\n' "$n"
	printf 'Machine: %s\n' "$(nproc) CPUs ($cpu), $mem RAM, ${fsys:-?} on a virtual disk ($dsyncs appends+fdatasync/s of 4 KiB from one thread), Linux $(uname -r), $(go env GOVERSION 2>/dev/null || go version); load average $LOAD0 before, $LOAD1 after ($lmin - $lmax at the starts of the measurements; threads waiting in fsync count as load). Share of the machine's CPU time during the whole run ($ELAPSED s, all groups): this benchmark (servers and clients) $PCT_OURS%, other processes $PCT_OTHER%, steal $PCT_STEAL%. All $((NODES * 3)) servers and the client share the CPUs and the disk."
	printf 'Tools: %s' "\`nats\` CLI $NV, nats-server $SV, $FV."
}

ARGS="-r $RUNS"
[ -n "$PUB" ] && ARGS+=" -s $N1 -a $N2"
[ -n "$CONS" ] && ARGS+=" -c $N3"
[ "$GROUPS_" != pub ] && ARGS="-g \"$GROUPS_\" $ARGS"
[ -n "$PUB" ] && [ "$SIZES" != 128B ] && ARGS+=" -m \"$SIZES\""
[ "$LOCS" != "local remote" ] && [ "$NODES" = 3 ] && ARGS+=" -L \"$LOCS\""
[ -n "$ONLY" ] && ARGS="-k \"$ONLY\" $ARGS"
[ "$NODES" = 1 ] && ARGS="-N 1 $ARGS"
[ -n "$FSYNC" ] && ARGS+=" -F"
[ -n "$AA" ] && ARGS="-A $ARGS"

# section_pub1: the publish section of a single-server run (-N 1; printed and saved, never spliced)
section_pub1() {
	cat <<EOF
### Publish to an R1 stream on one server

Measured $START_DATE by \`scripts/bench-js.sh $ARGS\` (${GSECS[pub]} s). Three single servers ran side by
side on 127.0.0.1, each started fresh: **$F** (\`flotilla server\` with its single-node defaults,
free ports), **$D** (nats-server, JetStream file store, default \`sync_interval\`) and **$A** (the
same with \`sync_interval: always\`). Flotilla acknowledges a publish once its Raft entry is written
and fsynced on its one node, so **$A is the like-for-like durability comparison**. Per run and
scenario the targets were measured in rotating order, each on a freshly created R1 file stream.
Ratios are of the medians; above 1 means $F is faster.

$(python3 "$TOOL" table "$RES" "${TARGETS[@]}")

Reading the numbers (generated from the tables above):

$(python3 "$TOOL" interp "$RES" "${TARGETS[@]}")$(notes "$RES" js.pub.)

Commands (PORT = the client port of the server):

\`\`\`sh
flotilla server --data-dir TMP/n1 --client-addr 127.0.0.1:PORT --http-addr 127.0.0.1:HTTP --cluster-addr 127.0.0.1:P2 --gossip-addr 127.0.0.1:P3
nats-server -c n1.conf   # listen 127.0.0.1, jetstream { store_dir, [sync_interval: always] }, no cluster
nats -s nats://127.0.0.1:PORT --no-context stream rm $STREAM -f
nats -s nats://127.0.0.1:PORT --no-context bench js pub sync $SUBJ --create --replicas 1 --msgs 1 --no-progress
nats -s nats://127.0.0.1:PORT --no-context bench js pub async $SUBJ --create --purge --replicas 1 --batch 500 --size SIZE [--clients 4] --msgs $N2 --no-progress   # SIZE = $SIZES
\`\`\`
EOF
}

section_pub() {
	local table interp fstable="" fsec=""
	[ "$NODES" = 1 ] && { section_pub1; return; }
	table=$(python3 "$TOOL" table "$RES" "${TARGETS[@]}")
	if [ -s "$FS" ]; then interp=$(python3 "$TOOL" interp "$RES" "${TARGETS[@]}" "$FS"); else interp=$(python3 "$TOOL" interp "$RES" "${TARGETS[@]}"); fi
	[ -s "$FS" ] && fstable=$(python3 "$TOOL" fsync-table "$FS")
	if [ -n "$fstable" ]; then
		fsec=$(
			cat <<EOF


Sync calls of the server processes of each cluster (\`-F\`: \`strace -c -f -e trace=fsync,fdatasync,sync_file_range\`
attached to the servers, \`scripts/bench/fsynccount.sh\`) while one client (four with \`--clients 4\`) publishes on the stream leader.
strace stops every traced thread at each system call, so the rates in the last column are far below
the table above; only the counts matter:

$fstable
EOF
		)
	fi
	cat <<EOF
### Publish to an R3 stream on three nodes

Measured $START_DATE by \`scripts/bench-js.sh $ARGS\` (${GSECS[pub]} s for these scenarios). Three three-node
clusters ran side by side on 127.0.0.1, each started fresh: **$F** (\`scripts/cluster.sh start -n 3\`),
**$D** (nats-server, JetStream file store, default \`sync_interval\`: data is flushed to the OS on
write and fsynced every 2 minutes) and **$A** (the same with \`sync_interval: always\`: fsync on
every write). Flotilla acknowledges a publish once its Raft entry is committed, i.e. written and
fsynced on a quorum (2 of 3 nodes), so **$A is the like-for-like durability comparison**; $D
shows what nats-server does when it skips the fsync.

Per run, placement and scenario the three targets were measured one after the other in rotating
order; before each measurement the stream was deleted and created anew (R3, file storage) and its
leader placed: *leader-local* = the client is connected to the server that leads the stream (for
nats-server moved there with \`nats stream cluster step-down --preferred\`; Flotilla has one Raft
group, so the client connects to the Raft leader), *leader-remote* = the client is connected to
another server, which forwards every publish to the leader. Placement moves the numbers a lot,
so compare leader-local with leader-local. Ratios are of the medians; above 1 means $F is faster.

$table

Reading the numbers (generated from the tables above):

$interp$fsec$(notes "$RES" js.pub.)

Commands (PORT = the client port of the server the client connects to):

\`\`\`sh
FLOTILLA_BIN=BINARY scripts/cluster.sh start -n 3 -p BASE -d TMP/flotilla    # + /cluster/status for leader_id
nats-server -c n1.conf   # x3: listen 127.0.0.1, jetstream { store_dir, [sync_interval: always] }, cluster { routes to all 3 }
# before each measurement: a fresh stream, leader placed
nats -s nats://127.0.0.1:PORT --no-context stream rm $STREAM -f
nats -s nats://127.0.0.1:PORT --no-context bench js pub sync $SUBJ --create --replicas 3 --msgs 1 --no-progress
nats -s nats://127.0.0.1:PORT --no-context stream cluster step-down $STREAM --preferred n1 -f   # nats-server only
# the measurements
nats -s nats://127.0.0.1:PORT --no-context bench js pub sync $SUBJ --create --purge --replicas 3 --msgs $N1 --no-progress
nats -s nats://127.0.0.1:PORT --no-context bench js pub async $SUBJ --create --purge --replicas 3 --batch 500 --size SIZE --msgs $N2 --no-progress
nats -s nats://127.0.0.1:PORT --no-context bench js pub async $SUBJ --create --purge --replicas 3 --batch 500 --size SIZE --clients 4 --msgs $N2 --no-progress   # SIZE = $SIZES
\`\`\`
EOF
}

section_consume() {
	local table interp
	table=$(python3 "$TOOL" table "$RESC" "${TARGETS[@]}")
	interp=$(python3 "$TOOL" cinterp "$RESC" "${TARGETS[@]}")
	cat <<EOF
### Consume from an R3 stream on three nodes

Measured $START_DATE by \`scripts/bench-js.sh $ARGS\` (${GSECS[consume]} s for these scenarios). The same
three kinds of cluster as for publishing (**$F**, **$D**, **$A**), all started fresh. Every
measurement reads a freshly filled stream: the stream is deleted and created anew (R3, file
storage), its leader placed as for publishing, then filled with $N3 messages of 128 B
(\`js pub async\`, not measured) and checked to hold exactly $N3. \`nats bench js consume\` and
\`js fetch\` read them all through the durable pull consumer \`nats-bench\` (deliver all, explicit
acks, \`max_ack_pending\` = 500 x clients) and acknowledge each message; \`js ordered\` reads them
through an ephemeral ordered consumer (R1, memory, no acks). Afterwards \`nats consumer info\` must
show every message delivered exactly once (and, with acks, the ack floor at the last one); then the
consumer and the stream are removed.

*leader-local* = the client is connected to the server that leads the stream and the consumer,
*leader-remote* = to another server, which relays pull requests, acks and messages. Flotilla has one
Raft group, so its stream and consumer leader is the Raft leader. nats-server gives each consumer its
own Raft group and puts its leader on any of the stream's servers, so for \`js consume\` and
\`js fetch\` the script creates the durable \`nats-bench\` itself (nats bench then only updates it)
and moves its leader next to the stream leader (\`nats consumer cluster step-down --preferred\`); the
ordered consumer, created by nats bench, stays wherever nats-server put it (counted below). Reading
writes no messages, but deliveries and acks are replicated state: Flotilla commits them through its
Raft log in batches, nats-server through the consumer's Raft group (fsynced with
\`sync_interval: always\`). Ratios are of the medians; above 1 means $F is faster.

$table

Reading the numbers (generated from the tables above):

$interp$(notes "$RESC" js.consume js.fetch js.ordered)

Commands (PORT = the client port of the server the client connects to, NODE = the stream leader):

\`\`\`sh
# before each measurement: a fresh stream, leader placed, filled, checked
nats -s nats://127.0.0.1:PORT --no-context stream rm $STREAM -f
nats -s nats://127.0.0.1:PORT --no-context bench js pub sync $SUBJ --create --replicas 3 --msgs 1 --no-progress
nats -s nats://127.0.0.1:PORT --no-context stream cluster step-down $STREAM --preferred NODE -f   # nats-server only
nats -s nats://127.0.0.1:PORT --no-context bench js pub async $SUBJ --create --purge --replicas 3 --batch 500 --msgs $N3 --no-progress
nats -s nats://127.0.0.1:PORT --no-context stream info $STREAM --json                         # state.messages = $N3
nats -s nats://127.0.0.1:PORT --no-context consumer rm $STREAM nats-bench -f                   # (none on a fresh stream)
# nats-server, js consume / js fetch only: the durable nats-bench, its leader on NODE (CLIENTS = 1 or 4)
nats -s nats://127.0.0.1:PORT --no-context consumer add $STREAM nats-bench --pull --deliver all --ack explicit --replay instant --max-pending \$((500 * CLIENTS)) --inactive-threshold 60s --defaults
nats -s nats://127.0.0.1:PORT --no-context consumer cluster step-down $STREAM nats-bench --preferred NODE -f
# the measurements
nats -s nats://127.0.0.1:PORT --no-context bench js consume --msgs $N3 --batch 500 --no-progress
nats -s nats://127.0.0.1:PORT --no-context bench js consume --msgs $N3 --batch 500 --clients 4 --no-progress
nats -s nats://127.0.0.1:PORT --no-context bench js fetch --msgs $N3 --batch 500 --no-progress
nats -s nats://127.0.0.1:PORT --no-context bench js ordered --msgs $N3 --no-progress
# after each: delivered.stream_seq = the stream's last_seq, no redeliveries, no acks pending; clean up
nats -s nats://127.0.0.1:PORT --no-context consumer info $STREAM CONSUMER --json
nats -s nats://127.0.0.1:PORT --no-context consumer rm $STREAM CONSUMER -f
nats -s nats://127.0.0.1:PORT --no-context stream rm $STREAM -f
\`\`\`
EOF
}

if [ -n "$PUB" ] && [ -n "$CONS" ]; then
	# two sections: the publish one here, the consume one (and the exit status) through bench_finish
	SEC=$(section_pub)
	echo "$SEC"
	echo "$SEC" >"$OUT/summary-pub.md"
	if [ -n "$WRITE" ]; then
		echo "$SEC" | python3 "$SPLICE" splice "$DOC" '<!-- js-bench:start -->' '<!-- js-bench:end -->'
		log "updated $DOC (publish section)"
	fi
	echo
fi
if [ -n "$CONS" ]; then
	RES=$RESC # (bench_finish names it in its last log line)
	bench_finish "$(section_consume)" "$SPLICE" '<!-- js-consume-bench:start -->' '<!-- js-consume-bench:end -->'
fi
bench_finish "$(section_pub)" "$SPLICE" '<!-- js-bench:start -->' '<!-- js-bench:end -->'
