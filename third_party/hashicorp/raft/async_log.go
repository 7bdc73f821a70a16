// Flotilla addition (not in hashicorp/raft v1.7.3): the leader's log write
// in parallel with replication. See FLOTILLA.md.

package raft

import "sync"

// AsyncLogStore is a LogStore that can take a leader's append before it is
// durable. When the LogStore given to NewRaft implements it, the leader
// appends with StoreLogsAsync and starts replicating at once; it counts
// itself towards the commit quorum for those entries only after synced
// reports them durable. Followers still use StoreLogs, which must return
// only when the entries (and every earlier one) are durable.
type AsyncLogStore interface {
	LogStore

	// StoreLogsAsync appends logs so that GetLog and LastIndex return
	// them once it returns, and calls synced exactly once (from another
	// goroutine, or before it returns) when they and every earlier entry
	// are durable (err nil) or can no longer become durable. Calls to synced are made in the
	// order of the StoreLogsAsync calls. An error returned by
	// StoreLogsAsync itself means nothing was appended, and synced is
	// not called.
	StoreLogsAsync(logs []*Log, synced func(err error)) error
}

// localSync carries the leader's durable index from the LogStore's sync
// goroutine to leaderLoop. One exists per leadership term, so a sync that
// completes after the node stopped leading reaches nobody.
type localSync struct {
	ch    chan struct{} // capacity 1: "index or err changed"
	mu    sync.Mutex
	index uint64
	err   error
}

func (l *localSync) synced(index uint64, err error) {
	l.mu.Lock()
	if err != nil && l.err == nil {
		l.err = err
	}
	if err == nil && index > l.index {
		l.index = index
	}
	l.mu.Unlock()
	asyncNotifyCh(l.ch)
}

func (l *localSync) result() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.index, l.err
}
