# Shared helpers for scripts/: tool installation, free ports, waiting.
# shellcheck shell=bash

NATSCLI_VERSION=v0.5.0 # never v0.5.1
NATS_SERVER_VERSION=v2.15.2
TOOLS_DIR=${FLOTILLA_TOOLS:-$HOME/.cache/flotilla-tools/bin}

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# tool NAME MODULE VERSION: path of a pinned Go tool, installed with
# `go install` into $TOOLS_DIR when it is missing or of another version.
tool() {
	local mod=$2 ver=$3 p="$TOOLS_DIR/$1"
	if [ -x "$p" ] && go version -m "$p" 2>/dev/null | grep -q "[[:space:]]${ver}[[:space:]]"; then
		echo "$p"
		return
	fi
	log "installing $mod@$ver into $TOOLS_DIR"
	mkdir -p "$TOOLS_DIR"
	GOBIN=$TOOLS_DIR GOFLAGS=-mod=mod go install "$mod@$ver" >&2
	echo "$p"
}

nats_cli() { tool nats github.com/nats-io/natscli/nats "$NATSCLI_VERSION"; }
nats_server() { tool nats-server github.com/nats-io/nats-server/v2 "$NATS_SERVER_VERSION"; }

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL SECONDS: poll until URL answers 200.
wait_http() {
	local url=$1 deadline=$((SECONDS + $2))
	while [ $SECONDS -lt $deadline ]; do
		if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "timed out waiting for $url" >&2
	return 1
}

# wait_port HOST PORT SECONDS: poll until a TCP listener accepts.
wait_port() {
	local deadline=$((SECONDS + $3))
	while [ $SECONDS -lt $deadline ]; do
		if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "timed out waiting for $1:$2" >&2
	return 1
}

# stop_pids PID...: SIGTERM, then SIGKILL after 10 s.
stop_pids() {
	local p
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "$@"; do
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

# bench_finish SECTION SPLICE_TOOL START_MARKER END_MARKER: prints the
# markdown SECTION, saves it to $OUT/summary.md, splices it into $DOC between
# the markers when $WRITE is set, and exits 1 if any run in FAILS failed.
# Uses the caller's OUT, WRITE, DOC, KEEP, RES and FAILS.
bench_finish() {
	local section=$1 tool=$2 start=$3 end=$4
	echo "$section"
	echo "$section" >"$OUT/summary.md"
	if [ -n "$WRITE" ]; then
		[ -f "$DOC" ] || { echo "missing $DOC" >&2; exit 2; }
		echo "$section" | python3 "$tool" splice "$DOC" "$start" "$end"
		log "updated $DOC"
	fi
	[ -n "$KEEP" ] && log "results: $RES, logs: $OUT/logs/"
	if [ ${#FAILS[@]} -gt 0 ]; then
		log "${#FAILS[@]} nats bench run(s) failed; details:"
		cat "$OUT/failures.txt" >&2
		exit 1
	fi
	exit 0
}

# Go profiles of a Flotilla node while a benchmark run goes on (the -P options of the bench
# scripts). prof_secs COUNT RATE: profile length in seconds for a run of COUNT messages at RATE
# msgs/s (the median of the timed runs): the run's expected length + 2 s, within 3 - 30 s.
prof_secs() {
	awk -v n="$1" -v r="$2" 'BEGIN { s = (r + 0 > 0) ? int(n / r + 0.999) + 2 : 10; if (s < 3) s = 3; if (s > 30) s = 30; print s }'
}
# prof_start HTTP_BASE SECONDS FILE_BASE: in the background, a CPU profile and a delta allocation
# profile of SECONDS from HTTP_BASE/debug/pprof into FILE_BASE.cpu.pb.gz and FILE_BASE.allocs.pb.gz
# (their PIDs go to PROF_PIDS; prof_wait waits for them).
PROF_PIDS=()
prof_start() {
	local kind
	for kind in profile allocs; do
		timeout $(($2 + 30)) curl -fsS -o "$3.${kind/profile/cpu}.pb.gz" "$1/debug/pprof/$kind?seconds=$2" 2>/dev/null &
		PROF_PIDS+=($!)
	done
	sleep 0.2 # (both handlers have started their clocks before the load begins)
}
prof_wait() {
	local p
	for p in "${PROF_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PROF_PIDS=()
}
