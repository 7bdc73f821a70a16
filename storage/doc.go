// Package storage will hold every bbolt file of a node: the FSM's durable
// message store (a bucket per stream, records keyed by big-endian sequence,
// the last applied Raft index updated in the same transaction), snapshots
// written from a read transaction and restored by an atomic file swap.
//
// A write transaction may hold new read transactions back until it has
// committed (Tx.HoldReaders): its writer can then tell others about its
// effects before bbolt's commit, and whoever reads next still sees them.
//
// It knows nothing about broker semantics and imports no other Flotilla
// package; it is the only package (with raft-boltdb inside cluster) that
// touches bbolt, and it translates bbolt's errors at its boundary.
//
// bbolt is a fork (third_party/etcd-io/bbolt, its FLOTILLA.md): a commit
// writes each run of adjacent pages with one pwritev instead of a pwrite
// per page, which a message log's commits, all new pages at the end of
// the file, make worth it.
package storage
