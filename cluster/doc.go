// Package cluster owns Raft (hashicorp/raft with its own segment log,
// raftlog.go, or raft-boltdb for older data dirs), gossip
// membership (hashicorp/memberlist), bootstrap and join, leadership
// observation and the generic forward-to-leader path. It declares the
// StateMachine interface that broker implements and treats commands as
// opaque bytes.
//
// It must never import broker or transport; only cmd/flotilla and broker
// import it. It is the only package that imports hashicorp/raft or
// memberlist, and it translates their errors into its own sentinels.
package cluster
