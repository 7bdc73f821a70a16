#!/usr/bin/env bash
# compose-test.sh - the docker-compose cluster end to end: build the image,
# start three containers under a unique project name (free host ports, a
# private /24 that no other docker network uses), then
#   1. all three become healthy,
#   2. a message published through n1 arrives through n3,
#   3. after `docker kill` of the Raft leader the survivors elect a new one
#      (the time from the kill to a survivor reporting the new leader is
#      printed as "failover: ..."),
#   4. messages still flow between the two survivors,
#   5. the killed node, started again, rejoins (every member alive, its
#      /readyz 200, same leader everywhere),
#   6. `docker-compose down -v` leaves no container, network or volume.
# Cleanup runs on every exit path. Host side uses 127.0.0.1 only.
#
# Env: FLOTILLA_BIN (default bin/flotilla), FLOTILLA_IMAGE (default
# flotilla:dev), COMPOSE_TEST_SKIP_BUILD=1 to reuse the existing binary and
# image instead of `make build` + `docker build`.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
cd "$ROOT"

export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
BIN=${FLOTILLA_BIN:-$ROOT/bin/flotilla}
export FLOTILLA_IMAGE=${FLOTILLA_IMAGE:-flotilla:dev}
PROJECT=flotilla-ci-$$
export COMPOSE_PROJECT_NAME=$PROJECT
COMPOSE=(docker-compose -p "$PROJECT" -f "$ROOT/docker-compose.yml")
TMP=$(mktemp -d /tmp/flotilla-compose.XXXXXX)
PASSED=0
FAILED=0
BGPIDS=()
START=$SECONDS

pass() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
# die: a failed step after which the rest cannot run.
die() {
	fail "$*"
	exit 1
}

leftovers() {
	{
		docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"
		docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"
		docker network ls -q --filter "name=^${PROJECT}_"
		docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"
		docker volume ls -q --filter "name=^${PROJECT}_"
	} 2>/dev/null | sort -u
}

CLEANED=0
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	for p in "${BGPIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	if [ "$CLEANED" = 0 ]; then
		if [ "$FAILED" -gt 0 ] || [ $rc -ne 0 ]; then
			echo "--- container logs (last 60 lines each, client connects left out) ---" >&2
			for s in n1 n2 n3; do
				echo "--- $s ---" >&2
				"${COMPOSE[@]}" logs --no-color --no-log-prefix "$s" 2>&1 |
					grep -v '"msg":"client connection \(opened\|closed\)"' | tail -60 >&2
			done
		fi
		"${COMPOSE[@]}" down -v --remove-orphans -t 5 >/dev/null 2>&1
		local left
		left=$(leftovers)
		if [ -n "$left" ]; then
			echo "leftovers after down, removing by force: $left" >&2
			docker rm -fv $(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT") >/dev/null 2>&1
			docker network rm $(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT") >/dev/null 2>&1
			docker volume rm $(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT") >/dev/null 2>&1
		fi
	fi
	rm -rf "$TMP"
	[ $rc -ne 0 ] && [ "$FAILED" -eq 0 ] && FAILED=1
	echo "compose-test: $PASSED passed, $FAILED failed ($((SECONDS - START))s)"
	[ "$FAILED" -eq 0 ] && [ $rc -eq 0 ] && exit 0
	exit 1
}
trap cleanup EXIT
trap 'echo "compose-test: interrupted" >&2; exit 130' INT TERM

# ---------------------------------------------------------------- helpers

now_ms() { date +%s%3N; }
# secs_since T0_MS: seconds since T0_MS with one decimal.
secs_since() { awk -v d=$(($(now_ms) - $1)) 'BEGIN { printf "%.1f\n", d / 1000 }'; }

# status PORT: /cluster/status JSON of the node whose http is on PORT.
status() { curl -fsS --max-time 2 "http://127.0.0.1:$1/cluster/status" 2>/dev/null; }

# field PORT EXPR: a python expression over the status dict `s`.
field() {
	status "$1" | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)" 2>/dev/null
}

leader_of() { field "$1" 's.get("leader_id") or ""'; }

# all_alive PORT N: the node on PORT sees N members, all alive.
all_alive() {
	[ "$(field "$1" 'sum(1 for m in s.get("members") or [] if m.get("status")=="alive")')" = "$2" ]
}

ready() { curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$1/readyz" 2>/dev/null; }

health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1" 2>/dev/null; }

cid() { "${COMPOSE[@]}" ps -q "$1"; }

# flow FROM_CLIENT_PORT TO_CLIENT_PORT SUBJECT SECONDS: subscribe on one
# node, publish on the other every 200 ms (interest crosses nodes
# asynchronously) until the subscriber has a message; echoes the seconds it
# took. Returns 1 on timeout.
flow() {
	local from=$1 to=$2 subj=$3 secs=$4 out="$TMP/$3.out" t0 deadline i=0 sp
	t0=$(now_ms)
	"$BIN" sub "$subj" --count 1 -s "nats://127.0.0.1:$to" >"$out" 2>"$out.err" &
	sp=$!
	BGPIDS+=("$sp")
	deadline=$((SECONDS + secs))
	while [ $SECONDS -lt $deadline ]; do
		if grep -q "payload-" "$out" 2>/dev/null; then break; fi
		if ! kill -0 "$sp" 2>/dev/null && ! grep -q "payload-" "$out" 2>/dev/null; then
			# the subscriber could not connect yet: try again
			"$BIN" sub "$subj" --count 1 -s "nats://127.0.0.1:$to" >"$out" 2>"$out.err" &
			sp=$!
			BGPIDS+=("$sp")
		fi
		i=$((i + 1))
		"$BIN" pub "$subj" "payload-$i" -s "nats://127.0.0.1:$from" >/dev/null 2>>"$TMP/$subj.pub.err" || true
		sleep 0.2
	done
	kill "$sp" 2>/dev/null || true
	wait "$sp" 2>/dev/null || true
	if grep -q "payload-" "$out"; then
		secs_since "$t0"
		return 0
	fi
	echo "subscriber on :$to got nothing published on :$from in ${secs}s" >&2
	sed 's/^/  sub: /' "$out.err" | tail -5 >&2
	sort -u "$TMP/$subj.pub.err" 2>/dev/null | sed 's/^/  pub: /' | tail -5 >&2
	return 1
}

# ---------------------------------------------------------------- setup

command -v docker >/dev/null && command -v docker-compose >/dev/null || die "docker and docker-compose are required"
if [ "${COMPOSE_TEST_SKIP_BUILD:-0}" != 1 ]; then
	log "building bin/flotilla and image $FLOTILLA_IMAGE"
	make -s -C "$ROOT" build >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log" >&2; die "make build"; }
	docker build -q -t "$FLOTILLA_IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log" >&2; die "docker build"; }
fi
[ -x "$BIN" ] || die "no binary at $BIN"

# Host ports: free ones, so that a developer's cluster (4222-4224) may run.
declare -A CPORT HPORT
taken=" "
pick_port() {
	local p
	for _ in $(seq 1 20); do
		p=$(free_port)
		case $taken in *" $p "*) continue ;; esac
		echo "$p"
		return
	done
	die "no free port"
}
for n in 1 2 3; do
	CPORT[n$n]=$(pick_port); taken+="${CPORT[n$n]} "
	HPORT[n$n]=$(pick_port); taken+="${HPORT[n$n]} "
	export "FLOTILLA_N${n}_CLIENT_PORT=${CPORT[n$n]}" "FLOTILLA_N${n}_HTTP_PORT=${HPORT[n$n]}"
done

# pick_subnet: the first three octets of a random private /24 that overlaps
# no docker network and no host route.
pick_subnet() {
	{
		docker network inspect $(docker network ls -q) -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null
		ip -4 route 2>/dev/null | awk '$1 ~ /^[0-9.]+\/[0-9]+$/ {print $1}'
	} | python3 -c '
import ipaddress, random, sys
used = []
for tok in sys.stdin.read().split():
    try:
        used.append(ipaddress.ip_network(tok, strict=False))
    except ValueError:
        pass
cands = [f"172.28.{i}" for i in range(60, 250)] + [f"10.213.{i}" for i in range(0, 256)]
random.shuffle(cands)
for c in cands:
    net = ipaddress.ip_network(c + ".0/24")
    if not any(net.overlaps(u) for u in used if u.version == 4):
        print(c)
        break
'
}

# Up, with a fresh subnet on each try (another network may grab ours).
for try in 1 2 3; do
	FLOTILLA_NET_PREFIX=$(pick_subnet)
	[ -n "$FLOTILLA_NET_PREFIX" ] || die "no free private /24 for the containers"
	export FLOTILLA_NET_PREFIX
	log "project $PROJECT, subnet $FLOTILLA_NET_PREFIX.0/24, clients ${CPORT[n1]},${CPORT[n2]},${CPORT[n3]}, http ${HPORT[n1]},${HPORT[n2]},${HPORT[n3]}"
	if "${COMPOSE[@]}" up -d --no-build >"$TMP/up.log" 2>&1; then break; fi
	cat "$TMP/up.log" >&2
	"${COMPOSE[@]}" down -v --remove-orphans -t 2 >/dev/null 2>&1 || true
	[ "$try" = 3 ] && die "docker-compose up"
done

# ---------------------------------------------------------------- 1. healthy
t0=$(now_ms)
deadline=$((SECONDS + 90))
while :; do
	states="$(health "$(cid n1)") $(health "$(cid n2)") $(health "$(cid n3)")"
	[ "$states" = "healthy healthy healthy" ] && break
	[ $SECONDS -ge $deadline ] && die "cluster not healthy after 90s: $states"
	sleep 0.5
done
pass "3 containers healthy in $(secs_since "$t0")s"

# ---------------------------------------------------------------- 2. n1 -> n3
if took=$(flow "${CPORT[n1]}" "${CPORT[n3]}" ct.n1n3 20); then
	pass "published through n1, received through n3 (${took}s)"
else
	fail "published through n1, received through n3"
fi

# ---------------------------------------------------------------- 3. failover
LEADER=$(leader_of "${HPORT[n1]}")
case "$LEADER" in n1 | n2 | n3) ;; *) die "n1 reports no usable leader_id: '$LEADER'" ;; esac
# every node must agree before we kill
for n in n1 n2 n3; do
	l=$(leader_of "${HPORT[$n]}")
	[ "$l" = "$LEADER" ] || die "$n reports leader '$l', n1 reports '$LEADER'"
done
SURV=()
for n in n1 n2 n3; do [ "$n" != "$LEADER" ] && SURV+=("$n"); done
log "leader is $LEADER; killing its container"
t0=$(now_ms)
docker kill "$(cid "$LEADER")" >/dev/null || die "docker kill $LEADER"
NEW=""
FIRST=""
deadline=$((SECONDS + 30))
while [ $SECONDS -lt $deadline ]; do
	for n in "${SURV[@]}"; do
		l=$(leader_of "${HPORT[$n]}")
		if [ -n "$l" ] && [ "$l" != "$LEADER" ]; then NEW=$l; FIRST=$n; break 2; fi
	done
	sleep 0.05
done
if [ -n "$NEW" ]; then
	ms=$(($(now_ms) - t0))
	# the other survivor must agree
	other=${SURV[0]}
	[ "$other" = "$FIRST" ] && other=${SURV[1]}
	agree=""
	deadline=$((SECONDS + 15))
	while [ $SECONDS -lt $deadline ]; do
		[ "$(leader_of "${HPORT[$other]}")" = "$NEW" ] && { agree=$(($(now_ms) - t0)); break; }
		sleep 0.05
	done
	echo "failover: killed leader $LEADER; $FIRST reported new leader $NEW after ${ms} ms; both survivors agree after ${agree:-?} ms"
	if [ -n "$agree" ]; then pass "new leader $NEW elected ${ms} ms after killing $LEADER"; else fail "survivor $other does not follow new leader $NEW"; fi
else
	die "no new leader within 30s of killing $LEADER"
fi

# ---------------------------------------------------------------- 4. survivors
if took=$(flow "${CPORT[${SURV[0]}]}" "${CPORT[${SURV[1]}]}" ct.survivors 20); then
	pass "messages flow ${SURV[0]} -> ${SURV[1]} with $LEADER down (${took}s)"
else
	fail "messages flow ${SURV[0]} -> ${SURV[1]} with $LEADER down"
fi

# ---------------------------------------------------------------- 5. rejoin
t0=$(now_ms)
docker start "$(cid "$LEADER")" >/dev/null || die "docker start $LEADER"
ok=""
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ]; do
	if ready "${HPORT[$LEADER]}" && all_alive "${HPORT[$LEADER]}" 3 && all_alive "${HPORT[$NEW]}" 3 &&
		[ "$(leader_of "${HPORT[$LEADER]}")" = "$(leader_of "${HPORT[$NEW]}")" ]; then
		ok=1
		break
	fi
	sleep 0.2
done
if [ -z "$ok" ]; then
	echo "--- $LEADER /cluster/status ---" >&2
	status "${HPORT[$LEADER]}" >&2 || echo "(no answer)" >&2
	echo "--- $NEW /cluster/status ---" >&2
	status "${HPORT[$NEW]}" >&2 || echo "(no answer)" >&2
	fail "$LEADER did not rejoin within 60s"
else
	rejoin=$(secs_since "$t0")
	agreed=$(leader_of "${HPORT[$NEW]}")
	if took=$(flow "${CPORT[$LEADER]}" "${CPORT[$NEW]}" ct.rejoined 20); then
		pass "$LEADER rejoined in ${rejoin}s (3 members alive, /readyz 200, agrees on leader $agreed; $LEADER -> $NEW flow ${took}s)"
	else
		fail "$LEADER rejoined in ${rejoin}s but messages do not flow $LEADER -> $NEW"
	fi
fi

# ---------------------------------------------------------------- 6. cleanup
if [ "$FAILED" -gt 0 ]; then exit 1; fi # cleanup() prints logs, then downs
"${COMPOSE[@]}" down -v --remove-orphans -t 10 >"$TMP/down.log" 2>&1 || cat "$TMP/down.log" >&2
CLEANED=1
left=$(leftovers)
if [ -z "$left" ]; then
	pass "docker-compose down -v left no containers, networks or volumes"
else
	CLEANED=0 # let cleanup() force-remove them
	fail "left behind: $left"
fi
