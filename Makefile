# Flotilla developer targets. `make run` and `make test` are the README's
# two set-up commands and must work on a fresh machine.
GO        ?= go
BIN       ?= bin/flotilla
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
IMAGE     ?= flotilla:dev
PKGS      := ./...

.PHONY: build run test test-race test-short lint fmt vet cover bench image clean fuzz cli-smoke \
	cluster-up cluster-down cluster-logs compose-test cli-js-smoke bench-core bench-js bench-scale chaos chaos-docker chaos-ci chaos-unsafe

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/flotilla

# A single node on the defaults: clients on 127.0.0.1:4222, http on 127.0.0.1:8222, data in ./data.
run: build
	./$(BIN) server --log-format console

# The whole suite: Go tests with the race detector, the stock nats CLI against a
# real node, the three-container docker-compose cluster end to end, and the
# chaos suite on local processes, and the proof that it catches an unsafe build.
# Inside `make test` the chaos schedule is fixed (seed 5, 3 and 5 nodes,
# unless CHAOS_SEED / CHAOS_NODES are set) so that CI runs are comparable.
# `make chaos` alone draws a new seed each time.
test: test-race cli-smoke cli-js-smoke compose-test chaos-ci chaos-unsafe

chaos-ci:
	CHAOS_SEED=$${CHAOS_SEED:-5} CHAOS_NODES=$${CHAOS_NODES:-3,5} $(MAKE) --no-print-directory chaos

test-race:
	$(GO) test -race -shuffle=on -timeout 20m $(PKGS)

test-short:
	$(GO) test -short $(PKGS)

# The stock `nats` CLI (v0.5.0) against a real flotilla process.
cli-smoke: build
	bash scripts/cli-smoke.sh ./$(BIN)

# The stock `nats` CLI's stream commands against a local three-node cluster.
cli-js-smoke: build
	bash scripts/cli-js-smoke.sh ./$(BIN)

# The chaos suite (docs/reliability.md): real flotilla processes on 127.0.0.1,
# clusters of 3 and 5 nodes, a seeded nemesis (kills, pauses, partitions,
# restarts, membership changes) under a nats.go workload, then the history
# checker over every node's final state. Fails on any violation. Knobs:
# CHAOS_SEED, CHAOS_DURATION (faults per cluster size), CHAOS_NODES,
# CHAOS_FAULTS, CHAOS_ARTIFACTS.
CHAOS_TIMEOUT ?= 40m
chaos:
	CHAOS=1 CHAOS_BACKEND=process $(GO) test -race -count=1 -v -timeout $(CHAOS_TIMEOUT) -run '^TestChaos$$' ./test/chaos/

# The suite's teeth: a binary built with -tags chaosunsafe acknowledges
# publishes before commit; this passes only if the checker catches it.
chaos-unsafe:
	CHAOS=1 CHAOS_UNSAFE=1 $(GO) test -race -count=1 -v -timeout 10m -run '^TestChaos_CatchesUnsafeBuild$$' ./test/chaos/

# The same suite on the docker-compose backend (containers from `make image`;
# faults through docker kill/stop/pause/network disconnect).
chaos-docker: image
	CHAOS_IMAGE=$(IMAGE) CHAOS_TIMEOUT=$(CHAOS_TIMEOUT) bash scripts/chaos-docker.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet $(PKGS)

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	bash scripts/check-imports.sh

cover:
	$(GO) test -race -coverprofile=cover.out $(PKGS)
	$(GO) tool cover -func=cover.out | tail -1

# Short fuzzing of the protocol parser and subject matching (not part of `make test`).
fuzz:
	$(GO) test ./transport -run '^$$' -fuzz FuzzParser -fuzztime 60s
	$(GO) test ./broker -run '^$$' -fuzz FuzzSubjectMatches -fuzztime 60s

# The whole target matrix with `nats bench` against nats-server v2.15.2 side by side (not a test;
# docs/benchmarks.md "Targets"): R3 JetStream publish (sync; async 1/4 clients at 128 B and 1 KiB),
# consume/fetch/ordered, single-node async publish, core pub/sub at 16 B and 1 KiB, request/reply
# P50 and group commit, as one table of medians, ratios and met/missed targets (~35 minutes).
# BENCH_FLAGS: -w writes the table into docs/benchmarks.md, -P DIR keeps Go profiles of the misses,
# -q is a quick smoke, -r RUNS (default 3); e.g. make bench BENCH_FLAGS='-w -P /tmp/prof'.
BENCH_FLAGS ?=
bench: build
	bash scripts/bench-all.sh $(BENCH_FLAGS) ./$(BIN)

# Core pub/sub throughput only (128 B, 5 runs; scripts/bench-core.sh -h for sizes and request/reply).
bench-core: build
	bash scripts/bench-core.sh ./$(BIN)

# JetStream publish side by side: three-node Flotilla vs three-node nats-server (default and sync always).
bench-js: build
	bash scripts/bench-js.sh -r 3 ./$(BIN)

# Scaling runs of a three-node Flotilla cluster: a stream growing to 10M messages, 1-256 publishers,
# 16 B-1 MiB messages, 10,000 idle connections, 10 minutes of publish+consume at half the peak
# (RSS and latency over time); SVG charts. Not a test (docs/benchmarks.md; -w rewrites its section).
# BENCH_SCALE_FLAGS: e.g. '-W 16 -w' to warm 16 GiB of memory first (see -h) and rewrite the section.
BENCH_SCALE_FLAGS ?=
bench-scale: build
	bash scripts/bench-scale.sh $(BENCH_SCALE_FLAGS) ./$(BIN)

# A FROM-scratch image from the static binary (no registry needed).
image: build
	DOCKER_BUILDKIT=0 docker build -t $(IMAGE) -f Dockerfile .

# Three containers (docker-compose.yml): clients on 127.0.0.1:4222-4224, http
# on 127.0.0.1:8222-8224. cluster-up waits (up to 90 s) until all are healthy.
COMPOSE ?= docker-compose -p flotilla
cluster-up: image
	FLOTILLA_IMAGE=$(IMAGE) $(COMPOSE) up -d --no-build
	@ids=$$($(COMPOSE) ps -q); deadline=$$(( $$(date +%s) + 90 )); \
	while :; do \
		st=$$(docker inspect -f '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' $$ids); \
		echo "$$st" | grep -qv ' healthy$$' || { echo "$$st"; echo "cluster healthy: nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"; break; }; \
		if [ $$(date +%s) -ge $$deadline ]; then echo "$$st"; echo "cluster not healthy after 90s (make cluster-logs)" >&2; exit 1; fi; \
		sleep 1; \
	done

cluster-down:
	$(COMPOSE) down -v --remove-orphans

cluster-logs:
	$(COMPOSE) logs --tail=200 -f

# The compose cluster end to end: failover, rejoin, cleanup (needs docker).
compose-test:
	bash scripts/compose-test.sh

clean:
	rm -rf bin cover.out
