#!/usr/bin/env bash
# bench-core.sh - core pub/sub throughput of Flotilla side by side with nats-server, measured with
# `nats bench` (natscli v0.5.0) in one run on the same machine. A benchmark, not a test: it never
# fails on numbers (it exits 1 only when a nats bench run errors, e.g. a subscriber that does not
# receive all messages). See docs/benchmarks.md.
#
# Usage: scripts/bench-core.sh [-r RUNS] [-n MSGS] [-q] [-w] [-o DIR] BINARY
#        scripts/bench-core.sh -A [-r RUNS] [-n MSGS] [-q]      (A/A: nats-server against nats-server)
#   BINARY   the flotilla binary (make bench passes ./bin/flotilla)
#   -r RUNS  runs per scenario and target (default 5); medians are reported
#   -n MSGS  messages per run (default 1000000)
#   -q       quick smoke: 100000 messages, 1 run (not for numbers); -r/-n still override
#   -w       also rewrite the "Core pub/sub" section of docs/benchmarks.md (between the
#            <!-- core-bench:start --> and <!-- core-bench:end --> markers)
#   -o DIR   keep results.tsv, the nats bench outputs and the server logs in DIR
#   -A       calibration: the "flotilla" target is a second nats-server (shows the noise floor)
# Scenarios, 128 B messages: 1 publisher + 1 subscriber on one subject, 4 publishers + 1 subscriber,
# 1 publisher without subscribers. Runs are interleaved per scenario (A,B then B,A in the next run)
# so machine noise hits both targets. Both servers listen on free 127.0.0.1 ports and live in a temp
# dir that is removed at exit; only the PIDs started here are stopped.
# Env: NATS_BIN, NATS_SERVER_BIN (use these binaries instead of the pinned ones from scripts/lib.sh),
#      FLOTILLA_TOOLS (where the pinned tools live / get installed, default ~/.cache/flotilla-tools/bin),
#      BENCH_TIMEOUT (seconds per nats bench command, default 60 + MSGS/10000),
#      BENCH_STALL (seconds without delivery progress before a subscriber is given up, default 15).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
TOOL="$HERE/bench/benchtool.py"
DOC="$ROOT/docs/benchmarks.md"
SIZE=128B

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

RUNS="" MSGS="" QUICK="" WRITE="" KEEP="" AA=""
while getopts "r:n:qwo:Ah" opt; do
	case $opt in
	r) RUNS=$OPTARG ;;
	n) MSGS=$OPTARG ;;
	q) QUICK=1 ;;
	w) WRITE=1 ;;
	o) KEEP=$OPTARG ;;
	A) AA=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
if [ -n "$QUICK" ]; then
	RUNS=${RUNS:-1} MSGS=${MSGS:-100000}
else
	RUNS=${RUNS:-5} MSGS=${MSGS:-1000000}
fi
[[ $RUNS =~ ^[1-9][0-9]*$ && $MSGS =~ ^[1-9][0-9]*$ ]] || { echo "-r and -n take positive integers" >&2; usage; }
[ $((MSGS % 4)) -eq 0 ] || { echo "-n must be a multiple of 4 (4 publishers share it)" >&2; exit 2; }
if [ -n "$AA" ]; then
	[ -z "$WRITE" ] || { echo "-A (calibration) does not write docs" >&2; exit 2; }
	BIN="" A=nats-server-A B=nats-server
else
	[ $# -eq 1 ] || usage
	[ -x "$1" ] || { echo "not an executable: $1" >&2; exit 2; }
	BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
	A=flotilla B=nats-server
fi
TO=${BENCH_TIMEOUT:-$((60 + MSGS / 10000))}
STALL=${BENCH_STALL:-15}
need() { command -v "$1" >/dev/null 2>&1 || { echo "missing tool: $1" >&2; exit 2; }; }
for t in go curl python3 timeout; do need "$t"; done

NATS=${NATS_BIN:-$(nats_cli)}
NATS_SERVER=${NATS_SERVER_BIN:-$(nats_server)}
NV=$("$NATS" --version 2>&1 || true)
SV=$("$NATS_SERVER" --version 2>&1 || true)
SV=${SV#nats-server: }
[ "$NV" = "$NATSCLI_VERSION" ] || { echo "nats CLI at $NATS is '$NV', need $NATSCLI_VERSION (never v0.5.1)" >&2; exit 2; }
[[ $SV == *"$NATS_SERVER_VERSION"* ]] || log "WARNING: nats-server is '$SV', expected $NATS_SERVER_VERSION"

TMP=$(mktemp -d /tmp/flotilla-bench.XXXXXX)
OUT=${KEEP:-$TMP/out}
mkdir -p "$OUT/logs"
RES="$OUT/results.tsv"
printf 'target\tscenario\trole\trun\tmsgs_per_s\tnote\tcommand\n' >"$RES"
SRV_PIDS=()
JOB_PIDS=()
cleanup() {
	local rc=$?
	[ ${#JOB_PIDS[@]} -gt 0 ] && stop_pids "${JOB_PIDS[@]}"
	[ ${#SRV_PIDS[@]} -gt 0 ] && stop_pids "${SRV_PIDS[@]}"
	if [ -n "$KEEP" ] && [ -d "$TMP/logs" ]; then cp "$TMP"/logs/*.log "$OUT/logs/" 2>/dev/null || true; fi
	rm -rf "$TMP"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$TMP/logs"

# ---- targets: URL, monitoring kind and base URL per label ----
declare -A URL KIND MON SC0
start_flotilla() { # start_flotilla LABEL
	local cp hp
	cp=$(free_port) hp=$(free_port)
	"$BIN" server --data-dir "$TMP/flotilla-data" --client-addr "127.0.0.1:$cp" --http-addr "127.0.0.1:$hp" \
		>"$TMP/logs/$1.log" 2>&1 &
	SRV_PIDS+=($!)
	wait_http "http://127.0.0.1:$hp/readyz" 30 || { tail -30 "$TMP/logs/$1.log" >&2; return 1; }
	URL[$1]=nats://127.0.0.1:$cp KIND[$1]=flotilla MON[$1]=http://127.0.0.1:$hp
}
start_nats() { # start_nats LABEL
	local cp mp
	cp=$(free_port) mp=$(free_port)
	"$NATS_SERVER" -a 127.0.0.1 -p "$cp" -m "$mp" >"$TMP/logs/$1.log" 2>&1 &
	SRV_PIDS+=($!)
	wait_port 127.0.0.1 "$cp" 30 && wait_http "http://127.0.0.1:$mp/healthz" 30 || { tail -30 "$TMP/logs/$1.log" >&2; return 1; }
	URL[$1]=nats://127.0.0.1:$cp KIND[$1]=nats MON[$1]=http://127.0.0.1:$mp
}
# sub_state LABEL SUBJECT -> "COUNT DELIVERED" of the server-side subscriptions on SUBJECT
sub_state() {
	local u
	if [ "${KIND[$1]}" = flotilla ]; then u="${MON[$1]}/debug/vars"; else u="${MON[$1]}/subsz?subs=1&test=$2"; fi
	curl -fsS --max-time 5 "$u" 2>/dev/null | python3 "$TOOL" sub "$2" || echo "0 0"
}
slow_consumers() { # slow_consumers LABEL -> the server's slow consumer counter
	local u
	if [ "${KIND[$1]}" = flotilla ]; then u="${MON[$1]}/debug/vars"; else u="${MON[$1]}/varz"; fi
	curl -fsS --max-time 5 "$u" 2>/dev/null | python3 "$TOOL" field slow_consumers || echo NA
}

if [ -n "$AA" ]; then start_nats "$A"; else start_flotilla "$A"; fi
start_nats "$B"
for t in "$A" "$B"; do SC0[$t]=$(slow_consumers "$t"); done
log "$A at ${URL[$A]}, $B at ${URL[$B]}; $RUNS run(s) x $MSGS msgs x $SIZE; results in $RES"

# ---- one measurement ----
# parse FILE -> msgs/s of nats bench v0.5.0 output (aggregated line for several clients), or NA
parse() {
	local r
	r=$(grep -E 'aggregated stats: [0-9,]+ msgs/sec' "$1" | tail -1 | sed -E 's/.*aggregated stats: ([0-9,]+) msgs\/sec.*/\1/' | tr -d , || true)
	[ -n "$r" ] || r=$(grep -E ' stats: [0-9,]+ msgs/sec' "$1" | tail -1 | sed -E 's/.* stats: ([0-9,]+) msgs\/sec.*/\1/' | tr -d , || true)
	echo "${r:-NA}"
}
FAILS=()
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; }
fail_note() { # fail_note LABEL SCEN ROLE RUN NOTE LOGFILE
	FAILS+=("$1 $2 $3 run $4: $5")
	{
		echo "---- $1 $2 $3 run $4: $5 (last lines of $(basename "$6"))"
		tail -8 "$6" 2>/dev/null
	} >>"$OUT/failures.txt"
	log "FAIL $1 $2 $3 run $4: $5"
}

measure() { # measure LABEL SCENARIO RUN
	local t=$1 sc=$2 run=$3 subj="bench.core.$2.$3.$RANDOM" lf="$OUT/logs/$1.$2.$3"
	local clients=1 spid="" prc=0 src=0 cnt=0 del=0 last=-1 since pr sr note sc0 sc1 d
	[ "$sc" = pubsub4 ] && clients=4
	local nb=("$NATS" -s "${URL[$t]}" --no-context bench)
	local pubargs=(pub "$subj" --msgs "$MSGS" --size "$SIZE" --clients "$clients" --no-progress)
	local subargs=(sub "$subj" --msgs "$MSGS" --size "$SIZE" --no-progress)
	log "$t | $sc | run $run"
	sc0=$(slow_consumers "$t")
	if [ "$sc" != pubonly ]; then
		timeout "$TO" "${nb[@]}" "${subargs[@]}" >"$lf.sub" 2>&1 &
		spid=$!
		JOB_PIDS+=("$spid")
		# publish only once the server has registered the subscription (pacing poll, bounded)
		since=$SECONDS
		while kill -0 "$spid" 2>/dev/null && [ $((SECONDS - since)) -lt 20 ]; do
			read -r cnt del < <(sub_state "$t" "$subj") || true
			[ "$cnt" -ge 1 ] && break
			sleep 0.05
		done
		if [ "$cnt" -lt 1 ]; then
			stop_pids "$spid"
			JOB_PIDS=()
			fail_note "$t" "$sc" sub "$run" "subscriber never registered on the server" "$lf.sub"
			row "$t" "$sc" pub "$run" "FAIL" "no subscriber" "-"
			row "$t" "$sc" sub "$run" "FAIL" "subscriber never registered" "-"
			return 0
		fi
	fi
	timeout "$TO" "${nb[@]}" "${pubargs[@]}" >"$lf.pub" 2>&1 || prc=$?
	pr=$(parse "$lf.pub")
	note=ok
	if [ $prc -ne 0 ] || [ "$pr" = NA ]; then
		note="publisher rc=$prc"
		fail_note "$t" "$sc" pub "$run" "$note" "$lf.pub"
		pr=FAIL
	fi
	row "$t" "$sc" pub "$run" "$pr" "$note" "nats bench ${pubargs[*]}"
	[ -n "$spid" ] || return 0

	# the subscriber must get all MSGS; give it up only when the server stops delivering to it
	since=$SECONDS note=ok
	while kill -0 "$spid" 2>/dev/null; do
		read -r cnt del < <(sub_state "$t" "$subj") || true
		if [ "$del" != "$last" ]; then last=$del since=$SECONDS; fi
		if [ $((SECONDS - since)) -ge "$STALL" ]; then
			note="subscriber gave up: no delivery progress for ${STALL}s (server-side count on its current subscription: $del)"
			kill -TERM "$spid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	wait "$spid" 2>/dev/null || src=$?
	JOB_PIDS=()
	sr=$(parse "$lf.sub")
	if [ "$note" != ok ] || [ $src -ne 0 ] || [ "$sr" = NA ]; then
		[ "$note" = ok ] && note="subscriber rc=$src"
		[ $src -eq 124 ] && note="subscriber timed out after ${TO}s"
		sc1=$(slow_consumers "$t")
		[[ $sc0 =~ ^[0-9]+$ && $sc1 =~ ^[0-9]+$ ]] && [ "$sc1" -gt "$sc0" ] &&
			note+="; the server counted $((sc1 - sc0)) slow consumer(s) during this run"
		d=$(grep -m1 -E 'Disconnected|[Ee]rror' "$lf.sub" || true)
		[ -n "$d" ] && note+="; nats bench sub said: '${d#* }'"
		fail_note "$t" "$sc" sub "$run" "$note" "$lf.sub"
		sr=FAIL
	fi
	row "$t" "$sc" sub "$run" "$sr" "$note" "nats bench ${subargs[*]}"
}

START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$SECONDS
for ((run = 1; run <= RUNS; run++)); do
	for sc in pubsub1 pubsub4 pubonly; do
		if [ $((run % 2)) -eq 1 ]; then order=("$A" "$B"); else order=("$B" "$A"); fi
		for t in "${order[@]}"; do measure "$t" "$sc" "$run"; done
	done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$((SECONDS - T0))
SC_DELTA=""
for t in "$A" "$B"; do
	s1=$(slow_consumers "$t")
	if [[ ${SC0[$t]} =~ ^[0-9]+$ && $s1 =~ ^[0-9]+$ ]]; then SC_DELTA+="$t $((s1 - SC0[$t])), "; else SC_DELTA+="$t ?, "; fi
done
SC_DELTA=${SC_DELTA%, }

# ---- report ----
TABLE=$(python3 "$TOOL" table "$A" "$B" "$RES")
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || true)
if [ -n "$AA" ]; then FV="(A/A calibration: no flotilla)"; else FV=$("$BIN" version 2>/dev/null || "$BIN" --version 2>/dev/null || echo unknown); fi
NOTES=""
if [ ${#FAILS[@]} -gt 0 ]; then
	NOTES+=$'\n\nFailed runs (not counted in the medians):\n'
	for f in "${FAILS[@]}"; do NOTES+=$'\n'"- $f"; done
fi
if awk -v a="${LOAD0%% *}" -v b="${LOAD1%% *}" -v n="$(nproc)" 'BEGIN { exit !(a > n || b > n) }'; then
	NOTES+=$'\n\n**The machine was busy** (1-minute load average above the CPU count): other work shared the CPUs,\n'
	NOTES+="so these numbers are rough; rerun on a quiet machine before reading anything into small ratio changes."
fi
section() {
	cat <<EOF
## Core pub/sub

Measured $START_DATE by \`scripts/bench-core.sh -r $RUNS -n $MSGS\` ($ELAPSED s). Median msgs/s of $RUNS
run(s) per scenario and target, runs interleaved; the last column is the ratio of the medians
(above 1 means $A is faster). $MSGS messages of $SIZE per run; with 4 publishers each sends
$((MSGS / 4)). Publisher rate = how fast \`nats bench pub\` could publish (aggregated over its
clients); subscriber rate = how fast \`nats bench sub\` received all $MSGS messages. With a subscriber,
its rate is the end-to-end throughput; a publisher rate well above it means the server queued
messages for the subscriber instead of pushing back on the publisher.

$TABLE

Slow consumers reported by the servers during the run: $SC_DELTA.$NOTES

Machine: $(nproc) CPUs ($cpu), $mem RAM, Linux $(uname -r), $(go env GOVERSION 2>/dev/null || go version); load average $LOAD0 before, $LOAD1 after.
Tools: \`nats\` CLI $NV, nats-server $SV, $FV.

Commands (PORT = a free 127.0.0.1 port, SUBJ = a fresh subject per run):

\`\`\`sh
flotilla server --data-dir TMP --client-addr 127.0.0.1:PORT --http-addr 127.0.0.1:HTTPPORT
nats-server -a 127.0.0.1 -p PORT -m MONPORT
# 1 pub -> 1 sub: subscriber first, publish once the server lists its subscription
nats -s nats://127.0.0.1:PORT --no-context bench sub SUBJ --msgs $MSGS --size $SIZE --no-progress &
nats -s nats://127.0.0.1:PORT --no-context bench pub SUBJ --msgs $MSGS --size $SIZE --clients 1 --no-progress
# 4 pub -> 1 sub: the same with --clients 4 on the publisher
# 1 pub, no sub: the publisher alone
\`\`\`
EOF
}
bench_finish "$(section)" "$TOOL" '<!-- core-bench:start -->' '<!-- core-bench:end -->'
