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
// An entry that would take the cache over maxBytes is not cached; it is
// read from the log when needed.
type logCache struct {
	store    raft.LogStore
	maxBytes int

	mu    sync.RWMutex
	ring  []*raft.Log
	bytes int
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
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		slot := &c.ring[l.Index%uint64(len(c.ring))]
		if *slot != nil {
			c.bytes -= entryBytes(*slot)
			*slot = nil
		}
		if n := entryBytes(l); c.bytes+n <= c.maxBytes {
			*slot = l
			c.bytes += n
		}
	}
	return nil
}

func (c *logCache) FirstIndex() (uint64, error) { return c.store.FirstIndex() }

func (c *logCache) LastIndex() (uint64, error) { return c.store.LastIndex() }

// DeleteRange empties the cache, as raft.LogCache does: deletes are
// compactions and conflict truncations, both rare.
func (c *logCache) DeleteRange(lo, hi uint64) error {
	c.mu.Lock()
	clear(c.ring)
	c.bytes = 0
	c.mu.Unlock()
	return c.store.DeleteRange(lo, hi)
}
