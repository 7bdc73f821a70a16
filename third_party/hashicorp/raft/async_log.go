// Flotilla addition (not in hashicorp/raft v1.7.3): the leader's log write
// in parallel with replication. See FLOTILLA.md.

package raft

import "sync"

// AsyncLogStore is a LogStore that can take an append before it is
// durable. When the LogStore given to NewRaft implements it:
//   - the leader appends with StoreLogsAsync and starts replicating at
//     once; it counts itself towards the commit quorum for those entries
//     only after synced reports them durable;
//   - a follower appends with StoreLogsAsync and answers the
//     AppendEntries only once synced reports the entries durable (or,
//     for a request that appends nothing but vouches for the log up to
//     PrevLogEntry, once StoreLogsAsync(nil, ...) reports the earlier
//     ones durable); it takes the next request
//     meanwhile, so one sync covers all that arrived in between.
type AsyncLogStore interface {
	LogStore

	// StoreLogsAsync appends logs so that GetLog and LastIndex return
	// them once it returns, and calls synced exactly once (from another
	// goroutine, or before it returns) when they and every earlier entry
	// are durable (err nil) or can no longer become durable. Calls to
	// synced are made in the order of the StoreLogsAsync calls. With no
	// logs it only waits for the earlier ones; synced may be nil. An
	// error returned by StoreLogsAsync itself means nothing was
	// appended, and synced is not called.
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

// syncedAck answers a follower's AppendEntries once its entries are
// durable and appendEntries has finished with it, whichever comes last.
type syncedAck struct {
	mu      sync.Mutex
	left    int // 2: the sync and appendEntries
	err     error
	respond func(error)
}

// synced is the StoreLogsAsync callback.
func (a *syncedAck) synced(err error) { a.finish(err, nil) }

// finish records one side's part: the sync's error, or appendEntries'
// respond function.
func (a *syncedAck) finish(err error, respond func(error)) {
	a.mu.Lock()
	if err != nil && a.err == nil {
		a.err = err
	}
	if respond != nil {
		a.respond = respond
	}
	a.left--
	last := a.left == 0
	a.mu.Unlock()
	if last {
		a.respond(a.err)
	}
}
