#!/usr/bin/env bash
# bench-core.sh - core pub/sub throughput (and request/reply latency) of Flotilla side by side with
# nats-server, measured with `nats bench` (natscli v0.5.0) in one run on the same machine. A
# benchmark, not a test: it never fails on numbers (it exits 1 only when a nats bench run errors,
# e.g. a subscriber that does not receive all messages). See docs/benchmarks.md.
#
# Usage: scripts/bench-core.sh [-g SCENARIOS] [-S SIZES] [-r RUNS] [-n MSGS] [-m REQS] [-q] [-w] [-o DIR] [-P DIR] BINARY
#        scripts/bench-core.sh -A [-g SCENARIOS] [-S SIZES] [-r RUNS] [-n MSGS] [-m REQS] [-q]   (A/A: nats-server against nats-server)
#   BINARY   the flotilla binary (e.g. ./bin/flotilla after `make build`)
#   -g LIST  scenarios (default "pubsub1 pubsub4 pubonly"): pubsub1 = 1 publisher + 1 subscriber on
#            one subject, pubsub4 = 4 publishers + 1 subscriber, pubonly = 1 publisher without
#            subscribers, reqrep = request/reply (`nats bench service serve` answers,
#            `nats bench service request` asks one request at a time: rate and P50 latency)
#   -S LIST  message sizes as nats bench takes them (default "128B"), e.g. -S "16B 1KiB"; every
#            scenario runs at every size
#   -r RUNS  runs per scenario, size and target (default 5); medians are reported
#   -n MSGS  messages per pub/sub run (default 1000000)
#   -m REQS  requests per request/reply run (default 10000)
#   -q       quick smoke: 100000 messages, 2000 requests, 1 run (not for numbers); -r/-n/-m still override
#   -w       also rewrite the "Core pub/sub" section of docs/benchmarks.md (between the
#            <!-- core-bench:start --> and <!-- core-bench:end --> markers)
#   -o DIR   keep results.tsv, the nats bench outputs and the server logs in DIR
#   -P DIR   after the timed runs, run every scenario and size once more against flotilla while
#            its CPU profile and a delta allocation profile (/debug/pprof/profile and
#            /debug/pprof/allocs with ?seconds=) are taken; the profiles go to DIR as
#            core.SCENARIO.SIZE.{cpu,allocs}.pb.gz, the run to DIR/core-prof.tsv (not in the table)
#   -A       calibration: the "flotilla" target is a second nats-server (shows the noise floor)
# Runs are interleaved per scenario (A,B then B,A in the next run) so machine noise hits both
# targets. Both servers listen on free 127.0.0.1 ports and live in a temp dir that is removed at
# exit; only the PIDs started here are stopped.
# Env: NATS_BIN, NATS_SERVER_BIN (use these binaries instead of the pinned ones from scripts/lib.sh),
#      FLOTILLA_TOOLS (where the pinned tools live / get installed, default ~/.cache/flotilla-tools/bin),
#      BENCH_TIMEOUT (seconds per nats bench command, default 60 + MSGS/10000 + REQS/500),
#      BENCH_STALL (seconds without delivery progress before a subscriber is given up, default 15).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
TOOL="$HERE/bench/benchtool.py"
DOC="$ROOT/docs/benchmarks.md"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

RUNS="" MSGS="" REQS="" QUICK="" WRITE="" KEEP="" AA="" PROF="" SCENS_="pubsub1 pubsub4 pubonly" SIZES="128B"
while getopts "g:S:r:n:m:qwo:P:Ah" opt; do
	case $opt in
	g) SCENS_=$OPTARG ;;
	S) SIZES=$OPTARG ;;
	r) RUNS=$OPTARG ;;
	n) MSGS=$OPTARG ;;
	m) REQS=$OPTARG ;;
	P) PROF=$OPTARG ;;
	q) QUICK=1 ;;
	w) WRITE=1 ;;
	o) KEEP=$OPTARG ;;
	A) AA=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
if [ -n "$QUICK" ]; then
	RUNS=${RUNS:-1} MSGS=${MSGS:-100000} REQS=${REQS:-2000}
else
	RUNS=${RUNS:-5} MSGS=${MSGS:-1000000} REQS=${REQS:-10000}
fi
[[ $RUNS =~ ^[1-9][0-9]*$ && $MSGS =~ ^[1-9][0-9]*$ && $REQS =~ ^[1-9][0-9]*$ ]] || { echo "-r, -n and -m take positive integers" >&2; usage; }
[ $((MSGS % 4)) -eq 0 ] || { echo "-n must be a multiple of 4 (4 publishers share it)" >&2; exit 2; }
read -r -a SCENS <<<"$SCENS_"
read -r -a SIZEL <<<"$SIZES"
if [ ${#SCENS[@]} -eq 0 ] || [ ${#SIZEL[@]} -eq 0 ]; then echo "-g and -S need at least one value" >&2; exit 2; fi
for sc in "${SCENS[@]}"; do
	[[ $sc =~ ^(pubsub1|pubsub4|pubonly|reqrep)$ ]] || { echo "-g takes pubsub1 pubsub4 pubonly reqrep, not '$sc'" >&2; exit 2; }
done
for z in "${SIZEL[@]}"; do [[ $z =~ ^[0-9]+(B|KB|KiB|MB|MiB)$ ]] || { echo "-S takes sizes like 16B or 1KiB, not '$z'" >&2; exit 2; }; done
if [ -n "$AA" ]; then
	[ -z "$WRITE" ] || { echo "-A (calibration) does not write docs" >&2; exit 2; }
	[ -z "$PROF" ] || { echo "-A (calibration) has no flotilla to profile" >&2; exit 2; }
	BIN="" A=nats-server-A B=nats-server
else
	[ $# -eq 1 ] || usage
	[ -x "$1" ] || { echo "not an executable: $1" >&2; exit 2; }
	BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
	A=flotilla B=nats-server
fi
TO=${BENCH_TIMEOUT:-$((60 + MSGS / 10000 + REQS / 500))}
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
OUT=$(cd "$OUT" && pwd)
RES="$OUT/results.tsv"
HDR='target\tscenario\tsize\trole\trun\tmsgs_per_s\tp50_us\tnote\tcommand\n'
# shellcheck disable=SC2059 # (the header is the format)
printf "$HDR" >"$RES"
rm -f "$OUT/failures.txt"
if [ -n "$PROF" ]; then
	mkdir -p "$PROF"
	PROF=$(cd "$PROF" && pwd)
fi
SRV_PIDS=()
JOB_PIDS=()
# shellcheck disable=SC2317 # (run by the EXIT trap, which shellcheck does not follow)
cleanup() {
	local rc=$?
	[ ${#JOB_PIDS[@]} -gt 0 ] && stop_pids "${JOB_PIDS[@]}"
	[ ${#PROF_PIDS[@]} -gt 0 ] && stop_pids "${PROF_PIDS[@]}"
	[ ${#SRV_PIDS[@]} -gt 0 ] && stop_pids "${SRV_PIDS[@]}"
	if [ -n "$KEEP" ] && [ -d "$TMP/logs" ]; then cp "$TMP"/logs/*.log "$OUT/logs/" 2>/dev/null || true; fi
	rm -rf "$TMP"
	exit "$rc"
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
	if ! wait_port 127.0.0.1 "$cp" 30 || ! wait_http "http://127.0.0.1:$mp/healthz" 30; then tail -30 "$TMP/logs/$1.log" >&2; return 1; fi
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
log "$A at ${URL[$A]}, $B at ${URL[$B]}; $RUNS run(s) of ${SCENS[*]} at ${SIZEL[*]} ($MSGS msgs, $REQS requests); results in $RES"

# ---- one measurement ----
# parse FILE -> msgs/s of nats bench v0.5.0 output (aggregated line for several clients), or NA
parse() {
	local r
	r=$(grep -E 'aggregated stats: [0-9,]+ msgs/sec' "$1" | tail -1 | sed -E 's/.*aggregated stats: ([0-9,]+) msgs\/sec.*/\1/' | tr -d , || true)
	[ -n "$r" ] || r=$(grep -E ' stats: [0-9,]+ msgs/sec' "$1" | tail -1 | sed -E 's/.* stats: ([0-9,]+) msgs\/sec.*/\1/' | tr -d , || true)
	echo "${r:-NA}"
}
# p50 FILE -> the P50 latency in us of a nats bench v0.5.0 output, or NA
p50() {
	local r
	r=$(grep -oE 'P50:? [0-9.,]+us' "$1" | tail -1 | sed -E 's/P50:? ([0-9.,]+)us/\1/' | tr -d , || true)
	echo "${r:-NA}"
}
FAILS=()
ROWS=$RES # the results file row() appends to (the profile runs have their own)
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"; } # TARGET SCEN SIZE ROLE RUN RATE P50 NOTE COMMAND
fail_note() { # fail_note LABEL SCEN ROLE RUN NOTE LOGFILE
	FAILS+=("$1 $2 $3 run $4: $5")
	{
		echo "---- $1 $2 $3 run $4: $5 (last lines of $(basename "$6"))"
		tail -8 "$6" 2>/dev/null
	} >>"$OUT/failures.txt"
	log "FAIL $1 $2 $3 run $4: $5"
}

# wait_sub LABEL SUBJECT PID: wait (at most 20 s) until the server lists a subscription on SUBJECT,
# while PID (the subscriber or the service) is alive; 0 when it does
wait_sub() {
	local cnt=0 del since=$SECONDS
	while kill -0 "$3" 2>/dev/null && [ $((SECONDS - since)) -lt 20 ]; do
		read -r cnt del < <(sub_state "$1" "$2") || true
		[ "$cnt" -ge 1 ] && return 0
		sleep 0.05
	done
	return 1
}

measure() { # measure LABEL SCENARIO SIZE RUN
	local t=$1 sc=$2 size=$3 run=$4 subj="bench.core.$2.$4.$RANDOM" lf="$OUT/logs/$1.$2.$3.$4"
	local clients=1 spid="" prc=0 src=0 cnt=0 del=0 last=-1 since pr sr note sc0 sc1 d
	[ "$sc" = pubsub4 ] && clients=4
	local nb=("$NATS" -s "${URL[$t]}" --no-context bench)
	local pubargs=(pub "$subj" --msgs "$MSGS" --size "$size" --clients "$clients" --no-progress)
	local subargs=(sub "$subj" --msgs "$MSGS" --size "$size" --no-progress)
	log "$t | $sc | $size | run $run"
	[ "$sc" = reqrep ] && { measure_reqrep "$@"; return 0; }
	sc0=$(slow_consumers "$t")
	if [ "$sc" != pubonly ]; then
		timeout "$TO" "${nb[@]}" "${subargs[@]}" >"$lf.sub" 2>&1 &
		spid=$!
		JOB_PIDS+=("$spid")
		# publish only once the server has registered the subscription (pacing poll, bounded)
		if ! wait_sub "$t" "$subj" "$spid"; then
			stop_pids "$spid"
			JOB_PIDS=()
			fail_note "$t" "$sc.$size" sub "$run" "subscriber never registered on the server" "$lf.sub"
			row "$t" "$sc" "$size" pub "$run" FAIL NA "no subscriber" "-"
			row "$t" "$sc" "$size" sub "$run" FAIL NA "subscriber never registered" "-"
			return 0
		fi
	fi
	timeout "$TO" "${nb[@]}" "${pubargs[@]}" >"$lf.pub" 2>&1 || prc=$?
	pr=$(parse "$lf.pub")
	note=ok
	if [ $prc -ne 0 ] || [ "$pr" = NA ]; then
		note="publisher rc=$prc"
		fail_note "$t" "$sc.$size" pub "$run" "$note" "$lf.pub"
		pr=FAIL
	fi
	row "$t" "$sc" "$size" pub "$run" "$pr" NA "$note" "nats bench ${pubargs[*]}"
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
		fail_note "$t" "$sc.$size" sub "$run" "$note" "$lf.sub"
		sr=FAIL
	fi
	row "$t" "$sc" "$size" sub "$run" "$sr" NA "$note" "nats bench ${subargs[*]}"
}

# measure_reqrep LABEL reqrep SIZE RUN: one service answering, one requester asking REQS times,
# one request at a time; the requester's rate and P50 latency
measure_reqrep() {
	local t=$1 sc=$2 size=$3 run=$4 subj="bench.rr.$4.$RANDOM" lf="$OUT/logs/$1.$2.$3.$4" spid rc=0 r p note=ok
	local nb=("$NATS" -s "${URL[$t]}" --no-context bench service)
	local srvargs=(serve "$subj" --size "$size" --no-progress)
	local reqargs=(request "$subj" --msgs "$REQS" --size "$size" --no-progress)
	timeout "$TO" "${nb[@]}" "${srvargs[@]}" >"$lf.serve" 2>&1 &
	spid=$!
	JOB_PIDS+=("$spid")
	if ! wait_sub "$t" "$subj" "$spid"; then
		stop_pids "$spid"
		JOB_PIDS=()
		fail_note "$t" "$sc.$size" req "$run" "the service never registered on the server" "$lf.serve"
		row "$t" "$sc" "$size" req "$run" FAIL NA "no service" "-"
		return 0
	fi
	timeout "$TO" "${nb[@]}" "${reqargs[@]}" >"$lf.req" 2>&1 || rc=$?
	stop_pids "$spid" # (serve answers until it is stopped)
	JOB_PIDS=()
	r=$(parse "$lf.req") p=$(p50 "$lf.req")
	if [ $rc -ne 0 ] || [ "$r" = NA ] || [ "$p" = NA ]; then
		note="requester rc=$rc"
		[ $rc -eq 124 ] && note="requester timed out after ${TO}s"
		fail_note "$t" "$sc.$size" req "$run" "$note" "$lf.req"
		r=FAIL p=NA
	fi
	row "$t" "$sc" "$size" req "$run" "$r" "$p" "$note" "nats bench service ${reqargs[*]}"
}

START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$SECONDS
for ((run = 1; run <= RUNS; run++)); do
	for size in "${SIZEL[@]}"; do
		for sc in "${SCENS[@]}"; do
			if [ $((run % 2)) -eq 1 ]; then order=("$A" "$B"); else order=("$B" "$A"); fi
			for t in "${order[@]}"; do measure "$t" "$sc" "$size" "$run"; done
		done
	done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$((SECONDS - T0))

# ---- optional profile runs (-P): one more run per scenario and size against flotilla ----
if [ -n "$PROF" ]; then
	ROWS="$PROF/core-prof.tsv"
	# shellcheck disable=SC2059
	printf "$HDR" >"$ROWS"
	for size in "${SIZEL[@]}"; do
		for sc in "${SCENS[@]}"; do
			case $sc in reqrep) role=req n=$REQS ;; pubonly) role=pub n=$MSGS ;; *) role=sub n=$MSGS ;; esac
			secs=$(prof_secs "$n" "$(python3 "$TOOL" median "$RES" "$A" "$sc" "$size" "$role")")
			log "profile run: $A | $sc | $size (${secs} s profiles)"
			prof_start "${MON[$A]}" "$secs" "$PROF/core.$sc.$size"
			measure "$A" "$sc" "$size" prof
			prof_wait
		done
	done
	ROWS=$RES
fi
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
ARGS="-r $RUNS -n $MSGS"
[ "${SCENS[*]}" != "pubsub1 pubsub4 pubonly" ] && ARGS="-g \"${SCENS[*]}\" $ARGS"
[ "${SIZEL[*]}" != 128B ] && ARGS="-S \"${SIZEL[*]}\" $ARGS"
[[ " ${SCENS[*]} " == *" reqrep "* ]] && ARGS+=" -m $REQS"
section() {
	cat <<EOF
## Core pub/sub

Measured $START_DATE by \`scripts/bench-core.sh $ARGS\` ($ELAPSED s). Median of $RUNS
run(s) per scenario, size and target, runs interleaved; the last column is the ratio of the medians
(above 1 means $A is faster, except for latency, where above 1 means $A is slower). $MSGS
messages per pub/sub run; with 4 publishers each sends $((MSGS / 4)). Publisher rate = how fast
\`nats bench pub\` could publish (aggregated over its clients); subscriber rate = how fast
\`nats bench sub\` received all $MSGS messages. With a subscriber, its rate is the end-to-end
throughput; a publisher rate well above it means the server queued messages for the subscriber
instead of pushing back on the publisher. Request/reply: one \`nats bench service request\` client
sends $REQS requests one at a time to one \`nats bench service serve\` responder on the same server;
the requester reports its rate and the P50 of its round trips.

$TABLE

Slow consumers reported by the servers during the run: $SC_DELTA.$NOTES

Machine: $(nproc) CPUs ($cpu), $mem RAM, Linux $(uname -r), $(go env GOVERSION 2>/dev/null || go version); load average $LOAD0 before, $LOAD1 after.
Tools: \`nats\` CLI $NV, nats-server $SV, $FV.

Commands (PORT = a free 127.0.0.1 port, SUBJ = a fresh subject per run, SIZE = ${SIZEL[*]}):

\`\`\`sh
flotilla server --data-dir TMP --client-addr 127.0.0.1:PORT --http-addr 127.0.0.1:HTTPPORT
nats-server -a 127.0.0.1 -p PORT -m MONPORT
# 1 pub -> 1 sub: subscriber first, publish once the server lists its subscription
nats -s nats://127.0.0.1:PORT --no-context bench sub SUBJ --msgs $MSGS --size SIZE --no-progress &
nats -s nats://127.0.0.1:PORT --no-context bench pub SUBJ --msgs $MSGS --size SIZE --clients 1 --no-progress
# 4 pub -> 1 sub: the same with --clients 4 on the publisher
# 1 pub, no sub: the publisher alone
# request/reply: the responder first, requests once the server lists its subscription; then stop it
nats -s nats://127.0.0.1:PORT --no-context bench service serve SUBJ --size SIZE --no-progress &
nats -s nats://127.0.0.1:PORT --no-context bench service request SUBJ --msgs $REQS --size SIZE --no-progress
\`\`\`
EOF
}
bench_finish "$(section)" "$TOOL" '<!-- core-bench:start -->' '<!-- core-bench:end -->'
