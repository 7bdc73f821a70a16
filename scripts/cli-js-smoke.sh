#!/usr/bin/env bash
# cli-js-smoke.sh BINARY - the stock `nats` CLI (natscli v0.5.0, schema
# validation ON: NOVALIDATE is unset) against a local three-node cluster:
# nats stream add/info/ls, nats pub -J, nats stream get/purge/rm, nats
# consumer add/info/ls/next/rm, nats sub --stream/--all, nats kv
# add/put/get/watch, nats bench oldjs push, through a follower. Exits
# non-zero on the first failure. 127.0.0.1 only, free ports, temp dir
# removed at exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

BIN=$(cd "$(dirname "${1:?usage: cli-js-smoke.sh BINARY}")" && pwd)/$(basename "$1")
NATS=${NATS_BIN:-$(nats_cli)}
unset NOVALIDATE
TMP=$(mktemp -d /tmp/flotilla-jssmoke.XXXXXX)
# cluster.sh uses BASE+0..2 (clients), +2000.. (cluster), +3724.. (gossip)
# and +4000.. (http). Keep them all below the kernel's ephemeral port range
# (outgoing connections take ports from there) and check they are free.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
eph_lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
BASE=""
for _ in $(seq 1 20); do
	b=$(( 10000 + RANDOM % (eph_lo - 10000 - 4010) ))
	ok=1
	for off in 0 1 2 2000 2001 2002 3724 3725 3726 4000 4001 4002; do
		port_free $((b + off)) || { ok=0; break; }
	done
	[ $ok -eq 1 ] && { BASE=$b; break; }
done
[ -n "$BASE" ] || { echo "no free port range found" >&2; exit 1; }
cleanup() {
	local rc=$?
	FLOTILLA_BIN=$BIN bash "$HERE/cluster.sh" stop -d "$TMP/cluster" >/dev/null 2>&1 || true
	if [ $rc -ne 0 ]; then
		for f in "$TMP"/cluster/n*.log; do echo "--- $f (last 30 lines)" >&2; tail -30 "$f" >&2 || true; done
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
FLOTILLA_BIN=$BIN bash "$HERE/cluster.sh" start -n 3 -p "$BASE" -d "$TMP/cluster" >/dev/null

# Talk to a follower: the API must be forwarded to the leader.
leader=$(curl -fsS "http://127.0.0.1:$((BASE + 4000))/cluster/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])')
port=$BASE
for i in 1 2 3; do
	if [ "n$i" != "$leader" ]; then port=$((BASE + i - 1)); break; fi
done
URL=nats://127.0.0.1:$port
nats() { "$NATS" --no-context -s "$URL" "$@"; }
pass() { echo "ok   $*"; }
expect() { # expect PATTERN OUTPUT
	grep -q -- "$1" <<<"$2" || { echo "expected '$1' in:"; echo "$2"; exit 1; }
}

out=$(nats stream add ORDERS --subjects 'orders.>' --defaults 2>&1)
expect "Stream ORDERS was created" "$out"
pass "nats stream add --defaults"
out=$(nats stream add ORDERS --subjects 'orders.>' --defaults 2>&1)
pass "nats stream add again (idempotent create)"

for i in 1 2 3; do
	out=$(nats pub -J orders.new "order $i" 2>&1)
	expect "Sequence: $i" "$out"
done
pass "nats pub -J (3 acks, sequences 1..3)"

out=$(nats stream info ORDERS 2>&1)
expect "Messages: 3" "$out"
pass "nats stream info"

out=$(nats stream ls 2>&1)
expect "ORDERS" "$out"
out=$(nats stream ls -n 2>&1)
expect "ORDERS" "$out"
pass "nats stream ls / ls -n"

out=$(nats stream get ORDERS 2 2>&1)
expect "order 2" "$out"
pass "nats stream get"

out=$(nats pub -J nostream.here "x" 2>&1 || true)
expect "no responders" "$(tr 'A-Z' 'a-z' <<<"$out")"
pass "nats pub -J to a subject no stream captures"

out=$(nats consumer add ORDERS C1 --pull --defaults 2>&1)
expect "Information for Consumer ORDERS > C1" "$out"
out=$(nats consumer add ORDERS C1 --pull --defaults 2>&1)
pass "nats consumer add --pull --defaults (and again: idempotent)"

out=$(nats consumer info ORDERS C1 2>&1)
expect "Unprocessed Messages: 3" "$out"
pass "nats consumer info"

out=$(nats consumer ls ORDERS 2>&1)
expect "C1" "$out"
pass "nats consumer ls"

out=$(nats consumer next ORDERS C1 2>&1)
expect "order 1" "$out"
out=$(nats consumer next ORDERS C1 --count 2 2>&1)
expect "order 3" "$out"
out=$(nats consumer info ORDERS C1 2>&1)
expect "Unprocessed Messages: 0" "$out"
expect "Outstanding Acks: 0" "$out"
pass "nats consumer next (acked: nothing outstanding)"

out=$(timeout 20 "$NATS" --no-context -s "$URL" sub --stream ORDERS --all --count 3 2>&1)
expect "order 3" "$out"
out=$(timeout 20 "$NATS" --no-context -s "$URL" sub 'orders.new' --all --count 3 2>&1)
expect "order 1" "$out"
pass "nats sub --stream ORDERS --all / nats sub subject --all"

out=$(nats consumer rm ORDERS C1 -f 2>&1)
if nats consumer info ORDERS C1 >/dev/null 2>&1; then echo "consumer still exists"; exit 1; fi
pass "nats consumer rm"

out=$(nats kv add CFG 2>&1)
nats kv put CFG color blue >/dev/null
nats kv put CFG size large >/dev/null
out=$(nats kv get CFG color 2>&1)
expect "blue" "$out"
out=$(timeout 5 "$NATS" --no-context -s "$URL" kv watch CFG 2>&1 || true)
expect "color" "$out"
expect "large" "$out"
pass "nats kv add/put/get/watch"

# The legacy push API under load: a durable push consumer with a deliver
# group, explicit acks and max_ack_pending (the bench creates and deletes it).
out=$(timeout 60 "$NATS" --no-context -s "$URL" bench js pub async bench.push --create --msgs 2000 --size 128 --no-progress 2>&1) || { echo "$out"; exit 1; }
expect "stats" "$out"
out=$(timeout 60 "$NATS" --no-context -s "$URL" bench oldjs push bench.push --msgs 2000 --no-progress 2>&1) || { echo "$out"; exit 1; }
expect "durable push consumer (old API) stats" "$out"
out=$(nats consumer ls benchstream 2>&1)
if grep -q nats-bench <<<"$out"; then echo "bench consumer not deleted:"; echo "$out"; exit 1; fi
pass "nats bench oldjs push (2,000 messages through a durable push consumer)"

out=$(nats stream purge ORDERS -f 2>&1)
out=$(nats stream info ORDERS 2>&1)
expect "Messages: 0" "$out"
pass "nats stream purge"

out=$(nats stream rm ORDERS -f 2>&1)
if nats stream info ORDERS >/dev/null 2>&1; then echo "stream still exists"; exit 1; fi
pass "nats stream rm"

echo "cli-js-smoke: 16 passed, 0 failed"
