#!/usr/bin/env bash
# bench-scale.sh - scaling runs of a three-node Flotilla cluster (issue 7): publish throughput as an
# R3 stream grows, with 1..256 publishers, with message sizes 16 B..1 MiB, the memory of 10,000 idle
# client connections, and minutes of sustained publish+consume at half the peak rate (RSS and
# latency over time). Load from `nats bench` (natscli v0.5.0), the client always connected to the
# Raft leader (Flotilla has one Raft group: its leader leads every stream). Draws SVG line charts
# (scripts/bench/plot.py). A benchmark, not a test: it never fails on numbers (it exits 1 only when
# a nats bench run or a connection step errors). See docs/benchmarks.md.
#
# Usage: scripts/bench-scale.sh [-g GROUPS] [-r RUNS] [-k CHUNKS] [-m MSGS] [-d MINUTES] [-C CONNS]
#                               [-R RATE] [-W GIB] [-q] [-w] [-o DIR] BINARY
#   BINARY    the flotilla binary (e.g. ./bin/flotilla after `make build`)
#   -g LIST   groups to run (default "growth publishers sizes idle sustained"); each gets a fresh cluster
#   -r RUNS   runs per point of "publishers" and "sizes", and of each growth series (default 3); medians
#             are reported
#   -k CHUNKS growth: chunks (default 10)
#   -m MSGS   growth: messages of 128 B per chunk (default 1000000: the stream grows to 10 million)
#   -d MIN    sustained: minutes (default 10)
#   -C CONNS  idle: connections (default 10000), opened in 10 steps
#   -R RATE   sustained: publish rate in msgs/s (default: half the median 1-client rate of
#             "publishers"; without that group, half of one 1-client run measured first)
#   -W GIB    first write a GIB GiB file into the temp dir and keep it to the end: its clean pages
#             fill memory the way a running server's page cache does, so the runs' page cache grows
#             by reclaiming them instead of into memory the machine has not touched lately (on a VM
#             whose balloon reports free memory to the host, each such page costs a host fault;
#             docs/benchmarks.md); default 0, no file
#   -q        quick smoke (not for numbers): 1 run, growth 5 x 20000, 25600 msgs per publisher
#             point, 16 MiB per size point, 1000 idle connections, 1 minute sustained
#   -w        also write the charts to docs/img/scale-*.svg and rewrite the section (the groups that ran) of
#             docs/benchmarks.md between <!-- scale-bench:start --> and <!-- scale-bench:end -->
#   -o DIR    keep the results (*.tsv), nats bench outputs, Go profiles, charts and node logs in DIR
# Groups (stream "benchstream", subject bench.js, R3, file storage, 128 B messages unless noted):
#   growth      RUNS times, alternating, each on a fresh cluster: one stream filled in CHUNKS chunks
#               without purging ("grow"), and the same chunks each on a purged, empty stream ("empty"):
#               nats bench js pub async bench.js --create [--purge] --replicas 3 --maxbytes 1TB --batch 500 --msgs MSGS
#               -> per chunk the median msgs/s over the runs against the empty-stream rate (the median of
#               all "empty" chunks; target: every chunk >= 0.8); each run's last chunk / its first; a
#               15 s CPU profile of the leader during the first and the last chunk of the first grow run
#   publishers  nats bench js pub async bench.js --create --purge --replicas 3 --batch 500 --clients C --msgs N
#               for C = 1 4 16 64 256 (N = 256000, shared by the clients), --timeout 30s: with 256 x 500
#               messages in flight some acks take longer than nats bench's default 5 s
#   sizes       nats bench js pub async ... --size S --batch B --timeout 30s for S = 16 B .. 1 MiB; each run
#               moves about 256 MiB (64 <= msgs <= 200000); B = 500, lowered so that a batch holds at
#               most 16 MiB (1 MiB: 16); the leader's RSS after each size; its heap profile at the end
#   idle        CONNS idle NATS connections (scripts/bench/idleconns.py: INFO, CONNECT, PING/PONG, then
#               only PONGs) to the leader; its VmRSS/RssAnon, Go heap, stacks and goroutines per step
#   sustained   a work-queue stream (acked messages leave it) read by `nats bench js consume --batch 500`
#               while `nats bench js pub async --batch 500 --throughput RATE --duration MIN` feeds it;
#               every 10 s: each node's VmRSS/RssAnon, the backlog, and a latency probe (50 x
#               `nats bench js pub sync` to a second R3 stream, p50/p99) -> first vs last minute
# The cluster is scripts/cluster.sh start -n 3 in a temp dir on 127.0.0.1 (default flags: max_payload
# 1MiB, so a 1 MiB message without headers fits). Every command is bounded by `timeout`; only the
# PIDs started here are stopped; the temp dir is removed at exit. `ulimit -n` is raised for "idle".
# Env: NATS_BIN (instead of the pinned nats CLI), FLOTILLA_TOOLS (see scripts/lib.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
TOOL="$HERE/bench/jstool.py"
SCALE="$HERE/bench/scaletool.py"
SPLICE="$HERE/bench/benchtool.py"
IDLE="$HERE/bench/idleconns.py"
DOC="$ROOT/docs/benchmarks.md"
IMGDIR="$ROOT/docs/img"
SUBJ=bench.js
STREAM=benchstream

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

GROUPS_="growth publishers sizes idle sustained" RUNS="" CHUNKS="" CHUNK="" MINUTES="" CONNS="" RATE=""
QUICK="" WRITE="" KEEP="" PEAK_SRC="" WARM=0
while getopts "g:r:k:m:d:C:R:W:qwo:h" opt; do
	case $opt in
	g) GROUPS_=$OPTARG ;;
	r) RUNS=$OPTARG ;;
	k) CHUNKS=$OPTARG ;;
	m) CHUNK=$OPTARG ;;
	d) MINUTES=$OPTARG ;;
	C) CONNS=$OPTARG ;;
	R) RATE=$OPTARG ;;
	W) WARM=$OPTARG ;;
	q) QUICK=1 ;;
	w) WRITE=1 ;;
	o) KEEP=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
[ -x "$1" ] || { echo "not an executable: $1" >&2; exit 2; }
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
if [ -n "$QUICK" ]; then
	RUNS=${RUNS:-1} CHUNKS=${CHUNKS:-5} CHUNK=${CHUNK:-20000} MINUTES=${MINUTES:-1} CONNS=${CONNS:-1000}
	PUBN=25600 SZBYTES=$((16 << 20)) SZMIN=16 SZMAX=20000 PROF_S=5
else
	RUNS=${RUNS:-3} CHUNKS=${CHUNKS:-10} CHUNK=${CHUNK:-1000000} MINUTES=${MINUTES:-10} CONNS=${CONNS:-10000}
	PUBN=256000 SZBYTES=$((256 << 20)) SZMIN=64 SZMAX=200000 PROF_S=15
fi
for v in "$RUNS" "$CHUNKS" "$CHUNK" "$MINUTES" "$CONNS"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || { echo "-r, -k, -m, -d and -C take positive integers" >&2; exit 2; }
done
[ -z "$RATE" ] || [[ $RATE =~ ^[1-9][0-9]*$ ]] || { echo "-R takes a positive integer" >&2; exit 2; }
[[ $WARM =~ ^[0-9]+$ ]] || { echo "-W takes a number of GiB" >&2; exit 2; }
declare -A DO=()
for g in $GROUPS_; do
	case $g in
	growth | publishers | sizes | idle | sustained) DO[$g]=1 ;;
	*) echo "-g takes growth, publishers, sizes, idle and/or sustained" >&2; exit 2 ;;
	esac
done
[ ${#DO[@]} -gt 0 ] || { echo "-g needs a group" >&2; exit 2; }
CLIENTS=(1 4 16 64 256)
SIZES=(16 128 1024 16384 65536 262144 1048576)
need() { command -v "$1" >/dev/null 2>&1 || { echo "missing tool: $1" >&2; exit 2; }; }
for t in go curl python3 timeout du; do need "$t"; done

if [ -n "${DO[idle]:-}" ]; then
	# the client process and the server node each hold one fd per connection
	want=$((CONNS + 1024))
	if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
		ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
	fi
	[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$want" ] ||
		{ echo "ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)); -C $CONNS needs $want" >&2; exit 2; }
fi

NATS=${NATS_BIN:-$(nats_cli)}
NV=$("$NATS" --version 2>&1 || true)
[ "$NV" = "$NATSCLI_VERSION" ] || { echo "nats CLI at $NATS is '$NV', need $NATSCLI_VERSION (never v0.5.1)" >&2; exit 2; }
FV=$("$BIN" version 2>/dev/null || echo unknown)

TMP=$(mktemp -d /tmp/flotilla-benchscale.XXXXXX)
OUT=${KEEP:-$TMP/out}
mkdir -p "$OUT/logs" "$OUT/profiles" "$OUT/img"
OUT=$(cd "$OUT" && pwd)
FAILS=()
RES=$OUT # (named by bench_finish with -o)
CDIR="" BASE="" BG_PIDS=()
NODE_CPU=0 # jiffies used by the nodes of the clusters already stopped

# shellcheck disable=SC2317 # (run by the EXIT trap)
cleanup() {
	local rc=$?
	[ ${#BG_PIDS[@]} -gt 0 ] && stop_pids "${BG_PIDS[@]}"
	stop_cluster
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
node_pid() { cat "$CDIR/$1.pid" 2>/dev/null || echo 0; }
cport() { echo $((BASE + ${1#n} - 1)); }
hport() { echo $((BASE + 4000 + ${1#n} - 1)); }
url() { echo "nats://127.0.0.1:$(cport "$1")"; }
nb() { # nb NODE ARGS...: a bounded nats CLI call against NODE
	local n=$1
	shift
	timeout 60 "$NATS" -s "$(url "$n")" --no-context "$@"
}
raft_leader() {
	local i l
	for i in 1 2 3; do
		l=$(curl -fsS --max-time 2 "http://127.0.0.1:$(hport "n$i")/cluster/status" 2>/dev/null | python3 "$TOOL" raft-leader || true)
		[ -n "$l" ] && [ "$l" != - ] && { echo "$l"; return 0; }
	done
	echo -
}
mem_kb() { # mem_kb NODE FIELD (VmRSS, RssAnon)
	awk -v k="$2:" '$1 == k {print $2}' "/proc/$(node_pid "$1")/status" 2>/dev/null || echo NA
}
disk_mb() { du -sm "$CDIR/$1" 2>/dev/null | cut -f1 || echo NA; }
pid_jiffies() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; } # utime+stime
node_jiffies() { # utime+stime of the running nodes
	local i s=0 v
	for i in 1 2 3; do
		v=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$(node_pid "n$i")/stat" 2>/dev/null || echo 0)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}

start_cluster() { # start_cluster LABEL: a fresh three-node cluster in $TMP/LABEL
	local label=$1 b i ok p
	CDIR=$TMP/$label BASE=""
	for _ in $(seq 1 20); do
		b=$((20000 + RANDOM % 6900)) ok=1
		for i in 0 1 2; do
			for p in $((b + i)) $((b + 2000 + i)) $((b + 3724 + i)) $((b + 4000 + i)); do port_free "$p" || ok=0; done
		done
		if [ $ok = 1 ]; then BASE=$b; break; fi
	done
	[ -n "$BASE" ] || { echo "no free port range" >&2; exit 1; }
	mkdir -p "$CDIR"
	if ! FLOTILLA_BIN=$BIN timeout 120 bash "$HERE/cluster.sh" start -n 3 -p "$BASE" -d "$CDIR" -w 60 >"$TMP/$label.start.log" 2>&1; then
		cat "$TMP/$label.start.log" >&2
		for i in 1 2 3; do echo "--- $CDIR/n$i.log (last 20 lines)" >&2; tail -20 "$CDIR/n$i.log" >&2 || true; done
		exit 1
	fi
	# JetStream ready: an R3 stream can be created
	for ((i = 0; i < 120; i++)); do
		if nb n1 stream add benchprobe --subjects benchprobe.x --storage file --replicas 3 --defaults >/dev/null 2>&1; then
			nb n1 stream rm benchprobe -f >/dev/null 2>&1 || true
			LEADER=$(raft_leader)
			[ "$LEADER" != - ] && { log "$label: cluster on 127.0.0.1:$BASE-$((BASE + 2)) ready, Raft leader $LEADER"; return 0; }
		fi
		sleep 0.5
	done
	echo "$label: JetStream not ready" >&2
	exit 1
}

stop_cluster() {
	local d=$CDIR f p i
	[ -n "$d" ] || return 0
	NODE_CPU=$((NODE_CPU + $(node_jiffies)))
	FLOTILLA_BIN=$BIN timeout 60 bash "$HERE/cluster.sh" stop -d "$d" >/dev/null 2>&1 || true
	for f in "$d"/n*.pid; do # belt and braces: a node of ours still running
		[ -f "$f" ] || continue
		p=$(cat "$f")
		if [ -n "$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "--data-dir $d/"; then stop_pids "$p"; fi
	done
	for i in 1 2 3; do [ -f "$d/n$i.log" ] && cp "$d/n$i.log" "$OUT/logs/$(basename "$d").n$i.log"; done
	rm -rf "$d"
	CDIR=""
}

fail() { # fail WHAT LOGFILE
	FAILS+=("$1")
	{
		echo "---- $1"
		tail -15 "$2" 2>/dev/null || true
	} >>"$OUT/failures.txt"
	log "FAIL $1"
}

# run_bench LOGFILE TIMEOUT NODE ARGS... -> "RATE P50 P99" (RATE=FAIL when nats bench failed)
run_bench() {
	local lf=$1 to=$2 n=$3 rc=0 r p50 p99
	shift 3
	timeout "$to" "$NATS" -s "$(url "$n")" --no-context "$@" --no-progress >"$lf" 2>&1 || rc=$?
	read -r r p50 p99 < <(python3 "$TOOL" parse "$lf")
	if [ $rc -ne 0 ] || [ "$r" = NA ]; then
		echo "FAIL $p50 $p99 rc=$rc$(grep -o 'nats: error: .*' "$lf" | tail -1 | sed 's/^nats: error:/:/')"
	else
		echo "$r $p50 $p99 ok"
	fi
}

stream_msgs() { nb "$1" stream info "$2" --json 2>/dev/null | python3 "$TOOL" stream-state || echo "- -"; }

prof_cpu() { # prof_cpu NODE SECONDS FILE: in the background; the pid is appended to BG_PIDS
	timeout $(($2 + 30)) curl -fsS -o "$3" "http://127.0.0.1:$(hport "$1")/debug/pprof/profile?seconds=$2" 2>/dev/null &
	BG_PIDS+=($!)
}
prof_heap() { timeout 30 curl -fsS -o "$2" "http://127.0.0.1:$(hport "$1")/debug/pprof/heap" 2>/dev/null || true; }
wait_bg() { # wait for (and forget) the background jobs
	local p
	for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	BG_PIDS=()
}

cpu_machine() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $9}' /proc/stat; } # busy steal
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$SECONDS W0=$(date +%s.%N)
read -r CB0 CS0 < <(cpu_machine)
CH0=$(awk '{sub(/^.*\) /, ""); print $12 + $13 + $14 + $15}' /proc/$$/stat)
declare -A GSECS=()

WARMED=""
if [ "$WARM" -gt 0 ]; then
	# on tmpfs the file would be memory the kernel cannot reclaim, not page cache
	[ "$(stat -f -c %T "$TMP")" != tmpfs ] || { echo "-W: $TMP is on tmpfs, where the file would take memory instead of warming it" >&2; exit 2; }
	log "writing a $WARM GiB file to warm the machine's memory (-W)"
	w0=$(date +%s.%N)
	# the system time dd takes is the price of pages the machine had not touched lately
	wsys=$(TIMEFORMAT=%S; { time dd if=/dev/zero of="$TMP/warm" bs=1M count=$((WARM * 1024)) status=none; } 2>&1)
	sync
	w1=$(date +%s.%N)
	WARMED=$(awk -v a="$w0" -v b="$w1" -v s="$wsys" 'BEGIN {printf "written and synced in %.1f s; dd took %.1f s of system time", b - a, s}')
	log "warm: $WARMED; $(awk '/^(MemFree|Cached):/ {printf "%s %.1f GiB ", $1, $2 / 1048576}' /proc/meminfo)"
fi

# ---- growth ----
# growth_pass RUN SERIES: CHUNKS chunks on a fresh cluster, one row each in growth.tsv. SERIES grow
# fills one stream; SERIES empty purges it before every chunk (nats bench --purge, outside the
# timed part), so each chunk starts on an empty stream: the same load for the same time, on a
# machine in the same state (page cache, dirty pages, Raft log), with only the stream's size
# different. Profiles: the first and the last chunk of the first grow pass.
growth_pass() {
	local run=$1 series=$2 c lf prof t0 t1 j0 j1 r st secs cpus l1 msgs note want purge=""
	[ "$series" = empty ] && purge=--purge
	start_cluster "growth-$series-r$run"
	L=$LEADER
	for ((c = 1; c <= CHUNKS; c++)); do
		lf="$OUT/logs/growth-$series-r$run.$c"
		prof=""
		if [ "$run" = 1 ] && [ "$series" = grow ] && { [ "$c" = 1 ] || [ "$c" = "$CHUNKS" ]; }; then
			prof="$OUT/profiles/growth-chunk$c.cpu.pb.gz"
			prof_cpu "$L" "$PROF_S" "$prof"
		fi
		t0=$EPOCHREALTIME j0=$(pid_jiffies "$(node_pid "$L")")
		# shellcheck disable=SC2086 # $purge is one flag or none
		read -r r _ _ st < <(run_bench "$lf" $((60 + CHUNK / 2000)) "$L" bench js pub async "$SUBJ" --create $purge --replicas 3 \
			--maxbytes 1TB --batch 500 --msgs "$CHUNK")
		t1=$EPOCHREALTIME j1=$(pid_jiffies "$(node_pid "$L")")
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
		cpus=$(awk -v a="$j0" -v b="$j1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) / hz}')
		[ -n "$prof" ] && wait_bg
		l1=$(raft_leader)
		read -r msgs _ < <(stream_msgs "$([ "$l1" = - ] && echo "$L" || echo "$l1")" "$STREAM")
		note=ok
		[ "$r" = FAIL ] && { fail "growth $series run $run chunk $c: nats bench $st" "$lf"; note="nats bench $st"; }
		addnote() { if [ "$note" = ok ]; then note=$1; else note+="; $1"; fi; log "growth: $1"; }
		want=$((c * CHUNK))
		[ "$series" = empty ] && want=$CHUNK
		[ "$msgs" != "$want" ] && addnote "stream holds $msgs, expected $want"
		[ "$l1" != "$L" ] && addnote "leader moved $L -> $l1"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$series" "$c" "$msgs" "$r" "$secs" "$l1" \
			"$(mem_kb "$l1" VmRSS)" "$(mem_kb "$l1" RssAnon)" "$(disk_mb "$l1")" "$note" "$t0" "$t1" "$cpus" >>"$G"
		log "growth $series run $run chunk $c/$CHUNKS: $r msgs/s, stream $msgs msgs, leader $l1 RSS $(mem_kb "$l1" VmRSS) kB, disk $(disk_mb "$l1") MB"
		L=$l1
		[ "$L" = - ] && { fail "growth $series run $run: no Raft leader after chunk $c" "$lf"; break; }
	done
	[ "$run" = 1 ] && [ "$series" = grow ] && prof_heap "$L" "$OUT/profiles/growth-end.heap.pb.gz"
	stop_cluster
}
if [ -n "${DO[growth]:-}" ]; then
	s0=$SECONDS
	G="$OUT/growth.tsv"
	printf 'run\tseries\tchunk\tstream_msgs\tmsgs_per_s\tseconds\tleader\tleader_vmrss_kb\tleader_rssanon_kb\tleader_disk_mb\tnote\tstart_epoch\tend_epoch\tleader_cpu_s\n' >"$G"
	# grow and empty alternate, so that the machine's drift over the group falls on both
	for ((run = 1; run <= RUNS; run++)); do
		growth_pass "$run" grow
		growth_pass "$run" empty
	done
	GSECS[growth]=$((SECONDS - s0))
fi

# ---- publishers ----
if [ -n "${DO[publishers]:-}" ]; then
	s0=$SECONDS
	start_cluster publishers
	P="$OUT/publishers.tsv"
	printf 'clients\trun\tmsgs_per_s\tp50_us\tp99_us\tleader\tnote\n' >"$P"
	for ((run = 1; run <= RUNS; run++)); do
		for c in "${CLIENTS[@]}"; do
			L=$(raft_leader)
			lf="$OUT/logs/publishers.$c.$run"
			read -r r p50 p99 st < <(run_bench "$lf" $((60 + PUBN / 1000)) "$L" --timeout 30s bench js pub async "$SUBJ" --create --purge \
				--replicas 3 --maxbytes 1TB --batch 500 --clients "$c" --msgs "$PUBN")
			l1=$(raft_leader) note=ok
			[ "$r" = FAIL ] && { fail "publishers $c clients run $run: nats bench $st" "$lf"; note="nats bench $st"; }
			[ "$l1" != "$L" ] && note="leader moved $L -> $l1"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$run" "$r" "$p50" "$p99" "$L" "$note" >>"$P"
			log "publishers: $c clients run $run: $r msgs/s ($note)"
		done
	done
	stop_cluster
	GSECS[publishers]=$((SECONDS - s0))
fi

# ---- sizes ----
size_msgs() { local m=$((SZBYTES / $1)); [ $m -lt $SZMIN ] && m=$SZMIN; [ $m -gt $SZMAX ] && m=$SZMAX; echo $m; }
size_batch() { local b=$(((16 << 20) / $1)); [ $b -gt 500 ] && b=500; [ $b -lt 1 ] && b=1; echo $b; }
if [ -n "${DO[sizes]:-}" ]; then
	s0=$SECONDS
	start_cluster sizes
	S="$OUT/sizes.tsv"
	printf 'size\trun\tmsgs\tbatch\tmsgs_per_s\tmib_per_s\tleader\tleader_vmrss_kb\tleader_rssanon_kb\tnote\n' >"$S"
	for ((run = 1; run <= RUNS; run++)); do
		for sz in "${SIZES[@]}"; do
			L=$(raft_leader)
			m=$(size_msgs "$sz") b=$(size_batch "$sz")
			lf="$OUT/logs/sizes.$sz.$run"
			read -r r _ _ st < <(run_bench "$lf" $((60 + m / 1000 + m * sz / 1048576)) "$L" --timeout 30s bench js pub async "$SUBJ" \
				--create --purge --replicas 3 --maxbytes 1TB --size "$sz" --batch "$b" --msgs "$m")
			l1=$(raft_leader) note=ok mib=NA
			if [ "$r" = FAIL ]; then
				fail "sizes $sz B run $run: nats bench $st" "$lf"
				note="nats bench $st"
			else
				mib=$(awk -v r="$r" -v s="$sz" 'BEGIN {printf "%.1f", r * s / 1048576}')
			fi
			[ "$l1" != "$L" ] && note="leader moved $L -> $l1"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sz" "$run" "$m" "$b" "$r" "$mib" "$L" "$(mem_kb "$l1" VmRSS)" \
				"$(mem_kb "$l1" RssAnon)" "$note" >>"$S"
			log "sizes: $sz B run $run: $r msgs/s, $mib MiB/s, leader RSS $(mem_kb "$l1" VmRSS) kB ($note)"
		done
	done
	prof_heap "$(raft_leader)" "$OUT/profiles/sizes-end.heap.pb.gz"
	stop_cluster
	GSECS[sizes]=$((SECONDS - s0))
fi

# ---- idle connections ----
if [ -n "${DO[idle]:-}" ]; then
	s0=$SECONDS
	start_cluster idle
	L=$LEADER
	sleep 5 # let the node settle after start
	step=$((CONNS / 10))
	[ $step -lt 1 ] && step=1
	if ! timeout $((300 + CONNS / 20)) python3 "$IDLE" --addr "127.0.0.1:$(cport "$L")" --conns "$CONNS" --step "$step" \
		--pid "$(node_pid "$L")" --metrics "http://127.0.0.1:$(hport "$L")/metrics" --hold 10 --settle 3 \
		--out "$OUT/idle.tsv" 2>"$OUT/logs/idle.log"; then
		fail "idle: $CONNS connections to $L" "$OUT/logs/idle.log"
	fi
	cat "$OUT/logs/idle.log" >&2
	echo "$L" >"$OUT/idle.node"
	stop_cluster
	GSECS[idle]=$((SECONDS - s0))
fi

# ---- sustained publish + consume ----
if [ -n "${DO[sustained]:-}" ]; then
	s0=$SECONDS
	start_cluster sustained
	L=$LEADER
	PEAK_SRC="-R"
	if [ -z "$RATE" ]; then
		if [ -s "$OUT/publishers.tsv" ]; then
			PEAK=$(python3 "$SCALE" median1 "$OUT/publishers.tsv")
			PEAK_SRC="the median 1-client rate of the publishers runs"
		else
			PEAK=NA
		fi
		if [ "$PEAK" = NA ]; then
			read -r PEAK _ _ st < <(run_bench "$OUT/logs/sustained.peak" $((60 + PUBN / 1000)) "$L" bench js pub async "$SUBJ" \
				--create --purge --replicas 3 --batch 500 --msgs "$PUBN")
			[ "$PEAK" = FAIL ] && { fail "sustained: the peak run: nats bench $st" "$OUT/logs/sustained.peak"; PEAK=2000; }
			nb "$L" stream rm "$STREAM" -f >/dev/null 2>&1 || true
			PEAK_SRC="one 1-client run on this cluster"
		fi
		RATE=$(awk -v p="$PEAK" 'BEGIN {printf "%d", p / 2}')
	else
		PEAK=NA
	fi
	TOTAL=$((RATE * MINUTES * 60))
	log "sustained: $RATE msgs/s for $MINUTES min ($TOTAL msgs), peak $PEAK ($PEAK_SRC)"
	nb "$L" stream add "$STREAM" --subjects "$SUBJ" --retention work --storage file --replicas 3 --defaults >"$OUT/logs/sustained.add" 2>&1 ||
		{ fail "sustained: stream add" "$OUT/logs/sustained.add"; }
	nb "$L" stream add scaleprobe --subjects scale.probe --storage file --replicas 3 --max-msgs 10000 --defaults >>"$OUT/logs/sustained.add" 2>&1 ||
		{ fail "sustained: probe stream add" "$OUT/logs/sustained.add"; }
	ST="$OUT/sustained.tsv"
	printf 't_s\tleader\tn1_vmrss_kb\tn1_rssanon_kb\tn2_vmrss_kb\tn2_rssanon_kb\tn3_vmrss_kb\tn3_rssanon_kb\tbacklog\tpublished\tprobe_p50_us\tprobe_p99_us\n' >"$ST"
	DUR=$((MINUTES * 60))
	timeout $((DUR + 180)) "$NATS" -s "$(url "$L")" --no-context bench js consume --msgs "$TOTAL" --batch 500 --no-progress \
		>"$OUT/logs/sustained.consume" 2>&1 &
	CPID=$!
	BG_PIDS+=("$CPID")
	sleep 1
	timeout $((DUR + 180)) "$NATS" -s "$(url "$L")" --no-context bench js pub async "$SUBJ" --batch 500 --throughput "$RATE" \
		--duration "${DUR}s" --no-progress >"$OUT/logs/sustained.pub" 2>&1 &
	PPID_=$! PT0=$EPOCHREALTIME
	BG_PIDS+=("$PPID_")
	ts=$SECONDS next=$SECONDS
	heap1=""
	while kill -0 "$PPID_" 2>/dev/null; do
		t=$((SECONDS - ts))
		l=$(raft_leader)
		[ "$l" = - ] && l=$L
		read -r backlog pub < <(stream_msgs "$l" "$STREAM")
		read -r _ p50 p99 _ < <(run_bench "$OUT/logs/sustained.probe" 30 "$l" bench js pub sync scale.probe --stream scaleprobe --msgs 50)
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$l" "$(mem_kb n1 VmRSS)" "$(mem_kb n1 RssAnon)" \
			"$(mem_kb n2 VmRSS)" "$(mem_kb n2 RssAnon)" "$(mem_kb n3 VmRSS)" "$(mem_kb n3 RssAnon)" "$backlog" "$pub" "$p50" "$p99" >>"$ST"
		log "sustained t=${t}s: leader $l RSS $(mem_kb "$l" VmRSS) kB, backlog $backlog, published $pub, probe p50 ${p50}us p99 ${p99}us"
		if [ -z "$heap1" ] && [ "$t" -ge 60 ]; then heap1=1; prof_heap "$l" "$OUT/profiles/sustained-1min.heap.pb.gz"; fi
		next=$((next + 10))
		while [ $SECONDS -lt $next ] && kill -0 "$PPID_" 2>/dev/null; do sleep 0.5; done
	done
	prc=0
	wait "$PPID_" || prc=$?
	PSECS=$(awk -v a="$PT0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')
	prof_heap "$(raft_leader)" "$OUT/profiles/sustained-end.heap.pb.gz"
	# a failed publisher never sends the rest, so the consumer would wait for its timeout
	[ $prc -eq 0 ] || stop_pids "$CPID"
	crc=0
	wait "$CPID" || crc=$?
	BG_PIDS=()
	[ $prc -eq 0 ] || fail "sustained: the publisher exited $prc" "$OUT/logs/sustained.pub"
	[ $crc -eq 0 ] || fail "sustained: the consumer exited $crc" "$OUT/logs/sustained.consume"
	read -r PUBR _ _ < <(python3 "$TOOL" parse "$OUT/logs/sustained.pub")
	read -r CONR _ _ < <(python3 "$TOOL" parse "$OUT/logs/sustained.consume")
	read -r backlog last < <(stream_msgs "$(raft_leader)" "$STREAM")
	status=ok
	[ $prc -eq 0 ] || status="the publisher exited $prc"
	[ $crc -eq 0 ] || status="${status#ok}${status:+; }the consumer exited $crc"
	status=${status#; }
	printf 'status\t%s\n' "$status" >"$OUT/sustained.meta"
	printf 'pub_secs\t%s\n' "$PSECS" >>"$OUT/sustained.meta"
	printf 'rate\t%s\npeak\t%s\npeak_src\t%s\nminutes\t%s\ntotal\t%s\npub_rate\t%s\nconsume_rate\t%s\nbacklog_end\t%s\nlast_seq\t%s\n' \
		"$RATE" "$PEAK" "$PEAK_SRC" "$MINUTES" "$TOTAL" "$PUBR" "$CONR" "$backlog" "$last" >>"$OUT/sustained.meta"
	log "sustained: published $last at $PUBR msgs/s, consumed at $CONR msgs/s, backlog at the end $backlog"
	stop_cluster
	GSECS[sustained]=$((SECONDS - s0))
fi

# ---- report ----
ELAPSED=$((SECONDS - T0))
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
read -r CB1 CS1 < <(cpu_machine)
CH1=$(awk '{sub(/^.*\) /, ""); print $12 + $13 + $14 + $15}' /proc/$$/stat)
read -r PCT_OURS PCT_OTHER PCT_STEAL < <(awk -v b="$((CB1 - CB0))" -v o="$((NODE_CPU + CH1 - CH0))" -v st="$((CS1 - CS0))" \
	-v w="$(awk -v a="$W0" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
	'BEGIN { t = w * hz * n; if (t <= 0) t = 1; x = (b - o) / t * 100; if (x < 0) x = 0; printf "%.0f %.0f %.0f\n", o / t * 100, x, st / t * 100 }')
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || true)
fsys=$(df -T "$TMP" 2>/dev/null | awk 'NR==2 {print $2}' || true)

ARGS=""
[ "$GROUPS_" != "growth publishers sizes idle sustained" ] && ARGS+=" -g \"$GROUPS_\""
[ -n "$QUICK" ] && ARGS+=" -q"
[ "$WARM" -gt 0 ] && ARGS+=" -W $WARM"
ARGS+=" -r $RUNS -k $CHUNKS -m $CHUNK -d $MINUTES -C $CONNS"
[ "$PEAK_SRC" = "-R" ] && ARGS+=" -R $RATE"
IMGREL=img
if [ -n "$WRITE" ]; then IMG=$IMGDIR; mkdir -p "$IMG"; else IMG=$OUT/img; fi
BODY=$(python3 "$SCALE" report "$OUT" "$IMG" "$IMGREL" "$HERE/bench/plot.py")
GS=""
for g in growth publishers sizes idle sustained; do [ -n "${GSECS[$g]:-}" ] && GS+="$g ${GSECS[$g]} s, "; done
FAILED=""
if [ ${#FAILS[@]} -gt 0 ]; then
	FAILED=$'\n\nFailed runs (not counted; the nats bench output is in failures.txt with -o):\n'
	for f in "${FAILS[@]}"; do FAILED+=$'\n'"- $f"; done
fi
BUSY=""
if [ "$PCT_OTHER" -ge 15 ] || [ "$PCT_STEAL" -ge 15 ]; then
	BUSY=$'\n\n'"**The machine was busy**: other processes used $PCT_OTHER% of its CPU time during the run (steal $PCT_STEAL%), so the absolute numbers are rough; the shapes of the curves are what to read."
fi
SECTION=$(
	cat <<EOF
## Scaling runs (three-node Flotilla)

Measured $START_DATE by \`scripts/bench-scale.sh$ARGS\` ($ELAPSED s: ${GS%, }). Each group ran on
its own fresh three-node cluster (\`scripts/cluster.sh start -n 3\`, default flags, data in a temp
dir) on 127.0.0.1, with \`nats bench\` connected to the Raft leader (Flotilla has one Raft group, so
the leader leads every stream). Stream \`$STREAM\` on subject \`$SUBJ\`, R3, file storage, 128 B
messages unless noted. Flotilla only: nats-server is compared in the sections above. RSS is the
node process's \`VmRSS\` from \`/proc/PID/status\`; *anon* is its \`RssAnon\` (heap, stacks), the
rest is file pages (BoltDB's memory map and the binary).

$BODY$FAILED$BUSY$([ -n "$WARMED" ] && printf '\n\n**Warm memory (-W %s)**: before the groups a %s GiB file was written into the temp dir and kept to the end (%s), so the runs'"'"' page cache grew by reclaiming its clean pages, as on a server whose memory is already full of page cache, rather than into memory the machine had not touched lately. Each group and growth pass deletes its cluster'"'"'s files at its end, so the next one first fills the memory those freed.' "$WARM" "$WARM" "$WARMED")

Machine: $(nproc) CPUs ($cpu), $mem RAM, ${fsys:-?} on a virtual disk, Linux $(uname -r), $(go env GOVERSION 2>/dev/null || true); load average $LOAD0 before, $LOAD1 after. Share of the machine's CPU time during the run: this benchmark (nodes and clients) $PCT_OURS%, other processes $PCT_OTHER%, steal $PCT_STEAL%. The three nodes and the load generator share the CPUs and the disk.
Tools: \`nats\` CLI $NV, $FV.

Commands (PORT = the Raft leader's client port, HTTP = its http port; every group on a fresh cluster):

\`\`\`sh
FLOTILLA_BIN=BINARY scripts/cluster.sh start -n 3 -p BASE -d TMP/GROUP       # leader: GET http://127.0.0.1:HTTP/cluster/status
# growth: $RUNS x (grow, then empty): $CHUNKS chunks into one stream, no purge in between (grow) / --purge before every chunk (empty)
nats -s nats://127.0.0.1:PORT --no-context bench js pub async $SUBJ --create [--purge] --replicas 3 --maxbytes 1TB --batch 500 --msgs $CHUNK --no-progress
# publishers: C = ${CLIENTS[*]}
nats -s nats://127.0.0.1:PORT --no-context --timeout 30s bench js pub async $SUBJ --create --purge --replicas 3 --maxbytes 1TB --batch 500 --clients C --msgs $PUBN --no-progress
# sizes: S = ${SIZES[*]}; M = $((SZBYTES >> 20)) MiB / S within [$SZMIN, $SZMAX]; B = min(500, 16 MiB / S)
nats -s nats://127.0.0.1:PORT --no-context --timeout 30s bench js pub async $SUBJ --create --purge --replicas 3 --maxbytes 1TB --size S --batch B --msgs M --no-progress
# idle: $CONNS connections in steps of $((CONNS / 10)), memory of the node after each step
python3 scripts/bench/idleconns.py --addr 127.0.0.1:PORT --conns $CONNS --step $((CONNS / 10)) --pid NODE_PID --metrics http://127.0.0.1:HTTP/metrics --hold 10 --settle 3
# sustained: a work queue, consumer and publisher side by side; a probe every 10 s
nats -s nats://127.0.0.1:PORT --no-context stream add $STREAM --subjects $SUBJ --retention work --storage file --replicas 3 --defaults
nats -s nats://127.0.0.1:PORT --no-context stream add scaleprobe --subjects scale.probe --storage file --replicas 3 --max-msgs 10000 --defaults
nats -s nats://127.0.0.1:PORT --no-context bench js consume --msgs RATE*SECONDS --batch 500 --no-progress &
nats -s nats://127.0.0.1:PORT --no-context bench js pub async $SUBJ --batch 500 --throughput RATE --duration $((MINUTES * 60))s --no-progress
nats -s nats://127.0.0.1:PORT --no-context bench js pub sync scale.probe --stream scaleprobe --msgs 50 --no-progress   # every 10 s
curl -o cpu.pb.gz 'http://127.0.0.1:HTTP/debug/pprof/profile?seconds=$PROF_S'; curl -o heap.pb.gz http://127.0.0.1:HTTP/debug/pprof/heap
\`\`\`
EOF
)
if [ -n "$WRITE" ]; then
	cp "$IMG"/scale-*.svg "$OUT/img/" 2>/dev/null || true
fi
bench_finish "$SECTION" "$SPLICE" '<!-- scale-bench:start -->' '<!-- scale-bench:end -->'
