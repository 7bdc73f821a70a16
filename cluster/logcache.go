package cluster

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// logCache keeps the newest Raft entries in memory so that the leader
// replicates them without reading the log file back, as raft.LogCache
// does, but bounded in bytes as well as in entries. raft.LogCache holds
// its last N entries whatever their size: with 1 MiB messages (up to
// 8 MiB per publish batch) its 1,024 entries kept over 900 MB of
// commands alive on every node (the scaling run in docs/benchmarks.md).
// Over maxBytes the oldest entries make room: replication and the
// followers' apply read the newest ones. (The first version refused new
// entries once full and kept the old ones until the ring wrapped, so with
// 1 KiB messages, 500 to an entry, it held the wrong 128 entries and the
// leader read nearly every entry back from the log file: half of its
// allocations in the 1 KiB async publish profile.) A single entry over
// maxBytes is never cached.
type logCache struct {
	store    raft.LogStore
	maxBytes int

	mu    sync.RWMutex
	ring  []*raft.Log
	bytes int
	first uint64 // no entry below this index is cached (0: none is)
}

// Defaults for the node's cache: entries and bytes.
const (
	logCacheEntries = 1024
	logCacheBytes   = 64 << 20
)

func newLogCache(store raft.LogStore, entries, maxBytes int) *logCache {
	return &logCache{store: store, maxBytes: maxBytes, ring: make([]*raft.Log, entries)}
}

func entryBytes(l *raft.Log) int { return len(l.Data) + len(l.Extensions) + 64 }

// IsMonotonic passes the store's answer on (raft.MonotonicLogStore).
func (c *logCache) IsMonotonic() bool {
	m, ok := c.store.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (c *logCache) GetLog(idx uint64, log *raft.Log) error {
	c.mu.RLock()
	cached := c.ring[idx%uint64(len(c.ring))]
	c.mu.RUnlock()
	if cached != nil && cached.Index == idx {
		*log = *cached
		return nil
	}
	return c.store.GetLog(idx, log)
}

func (c *logCache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

// StoreLogs caches the entries only once the store has them.
func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.store.StoreLogs(logs); err != nil {
		return fmt.Errorf("store raft logs: %w", err)
	}
	c.add(logs)
	return nil
}

// StoreLogsAsync implements raft.AsyncLogStore: the store's when it has
// one (the segment log), else a synced StoreLogs (with no logs, nothing
// is stored: every earlier append already returned synced).
func (c *logCache) StoreLogsAsync(logs []*raft.Log, synced func(error)) error {
	async, ok := c.store.(raft.AsyncLogStore)
	if !ok {
		if len(logs) > 0 {
			if err := c.StoreLogs(logs); err != nil {
				return err
			}
		}
		if synced != nil {
			synced(nil)
		}
		return nil
	}
	if err := async.StoreLogsAsync(logs, synced); err != nil {
		return fmt.Errorf("store raft logs: %w", err)
	}
	c.add(logs)
	return nil
}

// add caches appended entries.
func (c *logCache) add(logs []*raft.Log) {
	c.mu.Lock()
	defer c.mu.Unlock()
	size := uint64(len(c.ring))
	for _, l := range logs {
		c.drop(l.Index % size) // the entry size indexes back, or this index stored before
		n := entryBytes(l)
		if n > c.maxBytes {
			continue
		}
		if c.first == 0 || l.Index < c.first {
			c.first = l.Index
		}
		c.first = max(c.first, l.Index+1-min(l.Index, size)) // older slots were reused
		for c.bytes+n > c.maxBytes && c.first < l.Index {
			if s := c.ring[c.first%size]; s != nil && s.Index == c.first {
				c.drop(c.first % size)
			}
			c.first++
		}
		c.ring[l.Index%size] = l
		c.bytes += n
	}
}

// drop empties a slot.
func (c *logCache) drop(slot uint64) {
	if l := c.ring[slot]; l != nil {
		c.bytes -= entryBytes(l)
		c.ring[slot] = nil
	}
}

func (c *logCache) FirstIndex() (uint64, error) { return c.store.FirstIndex() }

func (c *logCache) LastIndex() (uint64, error) { return c.store.LastIndex() }

// DeleteRange empties the cache, as raft.LogCache does: deletes are
// compactions and conflict truncations, both rare.
func (c *logCache) DeleteRange(lo, hi uint64) error {
	c.mu.Lock()
	clear(c.ring)
	c.bytes = 0
	c.first = 0
	c.mu.Unlock()
	return c.store.DeleteRange(lo, hi)
}
