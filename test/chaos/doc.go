// Package chaos is Flotilla's chaos suite (issue 6): it starts a real
// cluster (local flotilla processes, or docker-compose containers), runs a
// workload of stock nats.go clients against it while a seeded nemesis
// kills, pauses, partitions, restarts and re-members nodes, then heals
// everything, reads every node's state file and hands the recorded history
// and the final states to the checker (package chaos/checker).
//
// Entry points: `make chaos` (process backend, sizes 3 and 5) and `make
// chaos-docker`; both run TestChaos, which is skipped unless CHAOS=1.
// docs/reliability.md describes the faults, the checks and the results.
//
// The harness only drives the product from the outside (binary, HTTP and
// NATS endpoints, docker CLI); it must not import Flotilla packages other
// than broker (for ReadState) and the checker.
package chaos
