#!/usr/bin/env bash
# chaos-docker.sh - the chaos suite (test/chaos) on the docker-compose
# backend: containers from the FROM-scratch image (CHAOS_IMAGE, default
# flotilla:dev; `make chaos-docker` builds it first), faults through the
# docker CLI. Every CHAOS_* variable of `make chaos` applies (see
# docs/reliability.md).
#
# The test removes its containers, networks and volumes itself (docker-
# compose down -v, then by label). This wrapper names the compose projects
# (CHAOS_DOCKER_PROJECT) so that it can remove whatever is left even when
# the test binary is killed or interrupted.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
cd "$ROOT"

command -v docker >/dev/null && command -v docker-compose >/dev/null || { echo "docker and docker-compose are required" >&2; exit 1; }
export CHAOS=1 CHAOS_BACKEND=docker DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
export CHAOS_IMAGE=${CHAOS_IMAGE:-flotilla:dev}
export CHAOS_DOCKER_PROJECT=flotilla-chaos-$$
docker image inspect "$CHAOS_IMAGE" >/dev/null 2>&1 || { echo "no image $CHAOS_IMAGE (make image)" >&2; exit 1; }

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	local ids
	ids=$(docker ps -a --filter "label=flotilla.chaos" --format '{{.ID}} {{.Label "flotilla.chaos"}}' | awk -v p="$CHAOS_DOCKER_PROJECT-" 'index($2, p) == 1 {print $1}')
	[ -n "$ids" ] && { log "removing leftover containers: $ids"; docker rm -fv $ids >/dev/null; }
	ids=$(docker network ls -q --filter "name=^$CHAOS_DOCKER_PROJECT-")
	[ -n "$ids" ] && { log "removing leftover networks: $ids"; docker network rm $ids >/dev/null; }
	ids=$(docker volume ls -q --filter "name=^$CHAOS_DOCKER_PROJECT-")
	[ -n "$ids" ] && { log "removing leftover volumes: $ids"; docker volume rm -f $ids >/dev/null; }
	exit $rc
}
trap cleanup EXIT
trap 'echo "chaos-docker: interrupted" >&2; exit 130' INT TERM

go test -race -count=1 -v -timeout "${CHAOS_TIMEOUT:-40m}" -run '^TestChaos$' ./test/chaos/
