#!/usr/bin/env bash
# bench-all.sh - the whole target matrix of docs/benchmarks.md ("Targets"): Flotilla against
# nats-server v2.15.2 with `nats bench` (natscli v0.5.0), all on 127.0.0.1 of this machine, then ONE
# table of medians, ratios, each scenario's target and whether it is met. `make bench` runs it.
# A benchmark, not a test: it exits 1 only when a nats bench run errors (or a step fails), never
# because a target is missed.
#
# Usage: scripts/bench-all.sh [-r RUNS] [-s N1] [-a N2] [-c N3] [-n CORE_MSGS] [-m REQS] [-q] [-w] [-o DIR] [-P DIR] BINARY
#   BINARY   the flotilla binary (make bench passes ./bin/flotilla)
#   -r RUNS  runs per scenario and target (default 3); medians are reported
#   -s N1    messages per `js pub sync` run (default 5000)
#   -a N2    messages per `js pub async` run, shared by the clients (default 200000)
#   -c N3    messages in the stream for each consumer run (default 150000)
#   -n MSGS  messages per core pub/sub run (default 1000000)
#   -m REQS  requests per request/reply run (default 10000)
#   -q       quick smoke: the steps' -q modes (1 run, small counts; not for numbers); -r etc. still override
#   -w       also write the table into docs/benchmarks.md between <!-- targets:start --> and
#            <!-- targets:end -->
#   -o DIR   keep every step's results, nats bench outputs and server logs in DIR (default: a temp
#            dir, removed at exit)
#   -P DIR   Go profiles: every Flotilla scenario is run once more (after its timed runs, not
#            counted) while the stream leader's CPU profile and a delta allocation profile are
#            taken; DIR keeps those of the scenarios that missed their target, each with the top 15
#            lines of `go tool pprof -top` next to it (*.top.txt), and the table lists them
# Steps (each a script of its own, with its own options and section in docs/benchmarks.md):
#   1. scripts/bench-js.sh -g "pub consume" -L local -m "128B 1KiB" -F: three-node Flotilla against
#      three-node nats-server clusters (default and sync_interval: always), R3 file streams, the
#      client on the stream leader: js pub sync, js pub async 1 and 4 clients at 128 B and 1 KiB,
#      js consume 1 and 4 clients, js fetch, js ordered; the fsync probe counts the sync calls of
#      sync, async and async with 4 clients (group commit)
#   2. scripts/bench-js.sh -N 1 -k "js.pub.async js.pub.async.4clients": one `flotilla server` (its
#      single-node defaults) against single nats-servers (default and always), R1 streams
#   3. scripts/bench-core.sh -g "pubsub1 pubsub4 reqrep" -S "16B 1KiB": core pub/sub and
#      request/reply against one nats-server
# Then scripts/bench/targets.py turns the three result sets into the table. The full run takes
# about 35 minutes on the 2-CPU development machine; -q about 4.
# Env: as for the steps (NATS_BIN, NATS_SERVER_BIN, FLOTILLA_TOOLS, BENCH_TIMEOUT); BENCH_STEP_TIMEOUT
#      bounds each step (seconds, default 3600).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
TOOL="$HERE/bench/targets.py"
SPLICE="$HERE/bench/benchtool.py"
DOC="$ROOT/docs/benchmarks.md"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

RUNS="" N1="" N2="" N3="" CMSGS="" REQS="" QUICK="" WRITE="" KEEP="" PROF=""
while getopts "r:s:a:c:n:m:qwo:P:h" opt; do
	case $opt in
	r) RUNS=$OPTARG ;;
	s) N1=$OPTARG ;;
	a) N2=$OPTARG ;;
	c) N3=$OPTARG ;;
	n) CMSGS=$OPTARG ;;
	m) REQS=$OPTARG ;;
	q) QUICK=1 ;;
	w) WRITE=1 ;;
	o) KEEP=$OPTARG ;;
	P) PROF=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
[ -x "$1" ] || { echo "not an executable: $1" >&2; exit 2; }
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
for v in "$RUNS" "$N1" "$N2" "$N3" "$CMSGS" "$REQS"; do
	[ -z "$v" ] || [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "-r, -s, -a, -c, -n and -m take positive integers" >&2; exit 2; }
done
[ -z "$WRITE" ] || [ -f "$DOC" ] || { echo "missing $DOC" >&2; exit 2; }
STEP_TO=${BENCH_STEP_TIMEOUT:-3600}
need() { command -v "$1" >/dev/null 2>&1 || { echo "missing tool: $1" >&2; exit 2; }; }
for t in go curl python3 timeout; do need "$t"; done

TMP=$(mktemp -d /tmp/flotilla-benchall.XXXXXX)
OUT=${KEEP:-$TMP/out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -n "$PROF" ]; then
	mkdir -p "$PROF"
	PROF=$(cd "$PROF" && pwd)
fi
STEP_PID=""
# shellcheck disable=SC2317 # (run by the EXIT trap)
cleanup() {
	local rc=$?
	# a step still running (interrupted): TERM lets it stop its own servers
	[ -n "$STEP_PID" ] && stop_pids "$STEP_PID"
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the common options of the steps
com=()
[ -n "$QUICK" ] && com+=(-q)
[ -z "$QUICK" ] && RUNS=${RUNS:-3} # (the steps' own defaults differ: bench-core.sh runs 5)
[ -n "$RUNS" ] && com+=(-r "$RUNS")
js=()
[ -n "$N1" ] && js+=(-s "$N1")
[ -n "$N2" ] && js+=(-a "$N2")
[ -n "$N3" ] && js+=(-c "$N3")
js1=()
[ -n "$N2" ] && js1+=(-a "$N2")
core=()
[ -n "$CMSGS" ] && core+=(-n "$CMSGS")
[ -n "$REQS" ] && core+=(-m "$REQS")
prof3=() prof1=() profc=()
if [ -n "$PROF" ]; then prof3=(-P "$PROF") prof1=(-P "$PROF") profc=(-P "$PROF"); fi

STEP_CMDS=()
FAILED=()
show() { # show ARGS...: a command line for the docs (quoted where needed, paths of this run as names)
	local a c=""
	for a in "$@"; do
		a=${a//"$BIN"/BINARY}
		a=${a//"$HERE/"/scripts/}
		# (the longer of the two directories first: one may be a prefix of the other)
		if [ -n "$PROF" ] && [ ${#PROF} -gt ${#OUT} ]; then a=${a//"$PROF"/PROF}; fi
		a=${a//"$OUT"/OUT}
		[ -n "$PROF" ] && a=${a//"$PROF"/PROF}
		if [[ $a == *" "* ]]; then c+="\"$a\" "; else c+="$a "; fi
	done
	echo "${c% }"
}
step() { # step NAME LOGFILE COMMAND...: run one step, bounded, in the background (so a signal reaches cleanup)
	local name=$1 lf=$2 rc=0 s0=$SECONDS
	shift 2
	STEP_CMDS+=("$(show "$@")")
	log "step $name: $*"
	timeout "$STEP_TO" "$@" >"$lf.md" 2>"$lf.log" &
	STEP_PID=$!
	wait "$STEP_PID" || rc=$?
	STEP_PID=""
	log "step $name: rc=$rc after $((SECONDS - s0)) s (section in $lf.md, log in $lf.log)"
	if [ $rc -ne 0 ]; then
		FAILED+=("$name (rc=$rc)")
		tail -5 "$lf.log" >&2 || true
	fi
}

cpu_machine() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; } # busy total
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
read -r B0 T0J < <(cpu_machine)
T0=$SECONDS

step js-r3 "$OUT/js3" bash "$HERE/bench-js.sh" -g "pub consume" -L local -m "128B 1KiB" -F "${com[@]}" "${js[@]}" \
	-o "$OUT/js3" "${prof3[@]}" "$BIN"
step js-single "$OUT/js1" bash "$HERE/bench-js.sh" -N 1 -k "js.pub.async js.pub.async.4clients" "${com[@]}" "${js1[@]}" \
	-o "$OUT/js1" "${prof1[@]}" "$BIN"
step core "$OUT/core" bash "$HERE/bench-core.sh" -g "pubsub1 pubsub4 reqrep" -S "16B 1KiB" "${com[@]}" "${core[@]}" \
	-o "$OUT/core" "${profc[@]}" "$BIN"

ELAPSED=$((SECONDS - T0))
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
read -r B1 T1J < <(cpu_machine)
BUSY=$(awk -v b=$((B1 - B0)) -v t=$((T1J - T0J)) 'BEGIN { printf "%.0f", (t > 0 ? b / t * 100 : 0) }')

# ---- the table ----
ARGS=""
[ -n "$QUICK" ] && ARGS+=" -q"
[ -n "$RUNS" ] && ARGS+=" -r $RUNS"
[ -n "$N1" ] && ARGS+=" -s $N1"
[ -n "$N2" ] && ARGS+=" -a $N2"
[ -n "$N3" ] && ARGS+=" -c $N3"
[ -n "$CMSGS" ] && ARGS+=" -n $CMSGS"
[ -n "$REQS" ] && ARGS+=" -m $REQS"
[ -n "$WRITE" ] && ARGS+=" -w"
[ -n "$PROF" ] && ARGS+=" -P PROF"
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || true)
fsys=$(df -T "$TMP" 2>/dev/null | awk 'NR==2 {print $2}' || true)
FV=$("$BIN" version 2>/dev/null || echo unknown)
NATS=${NATS_BIN:-$(nats_cli)}
NATS_SERVER=${NATS_SERVER_BIN:-$(nats_server)}
NV=$("$NATS" --version 2>&1 || true)
SV=$("$NATS_SERVER" --version 2>&1 || true)
SV=${SV#nats-server: }
{
	echo "date=$START_DATE"
	echo "args=scripts/bench-all.sh${ARGS} BINARY"
	echo "elapsed=$ELAPSED"
	echo "machine=$(nproc) CPUs (${cpu:-?}), $mem RAM, ${fsys:-?} on a virtual disk, Linux $(uname -r), $(go env GOVERSION 2>/dev/null || go version)"
	echo "load=load average $LOAD0 before, $LOAD1 after; the machine's CPUs were $BUSY% busy over the whole run (this benchmark and anything else)"
	echo "tools=\`nats\` CLI $NV, nats-server $SV, $FV"
	for c in "${STEP_CMDS[@]}"; do echo "cmd=$c"; done
	for f in "${FAILED[@]}"; do echo "failed=$f"; done
} >"$OUT/meta.txt"
SECTION=$(python3 "$TOOL" report "$OUT" "$OUT/meta.txt" ${PROF:+"$PROF"})
echo "$SECTION"
echo "$SECTION" >"$OUT/targets.md"
if [ -n "$WRITE" ]; then
	echo "$SECTION" | python3 "$SPLICE" splice "$DOC" '<!-- targets:start -->' '<!-- targets:end -->'
	log "updated $DOC (Targets)"
fi
[ -n "$KEEP" ] && log "results: $OUT (targets.md, js3/, js1/, core/)"
[ -n "$PROF" ] && log "profiles of the missed targets: $PROF"
if [ ${#FAILED[@]} -gt 0 ]; then
	log "failed steps: ${FAILED[*]} (their failures.txt and logs are in the step directories with -o)"
	exit 1
fi
exit 0
