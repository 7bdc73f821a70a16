package cluster

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

// The cache holds at most maxBytes of entries; entries it cannot hold are
// read from the log, and every entry reads back whole either way.
func TestLogCache_BoundedInBytes(t *testing.T) {
	t.Parallel()
	seg := mustOpenSegLog(t, t.TempDir(), 64<<20)
	const maxBytes = 4 << 20
	c := newLogCache(seg, 16, maxBytes)
	data := func(i uint64) []byte { return bytes.Repeat([]byte{byte(i)}, int(i%3)<<20) } // 0, 1 or 2 MiB
	for i := uint64(1); i <= 40; i++ {
		if err := c.StoreLogs([]*raft.Log{{Index: i, Term: 1, Type: raft.LogCommand, Data: data(i)}}); err != nil {
			t.Fatal(err)
		}
		if c.bytes > maxBytes {
			t.Fatalf("after entry %d the cache holds %d bytes, over %d", i, c.bytes, maxBytes)
		}
	}
	cached := 0
	for i := uint64(1); i <= 40; i++ {
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if l.Index != i || !bytes.Equal(l.Data, data(i)) {
			t.Fatalf("entry %d read back as index %d, %d bytes", i, l.Index, len(l.Data))
		}
		if s := c.ring[i%16]; s != nil && s.Index == i {
			cached++
		}
	}
	if cached == 0 {
		t.Fatal("nothing cached")
	}
	if !c.IsMonotonic() {
		t.Fatal("the segment log is monotonic; the cache must say so")
	}
	// Deletes empty the cache (and the log keeps the rest).
	if err := c.DeleteRange(1, 30); err != nil {
		t.Fatal(err)
	}
	if c.bytes != 0 {
		t.Fatalf("after DeleteRange the cache holds %d bytes", c.bytes)
	}
	var l raft.Log
	if err := c.GetLog(35, &l); err != nil || !bytes.Equal(l.Data, data(35)) {
		t.Fatalf("entry 35 after the delete: %v", err)
	}
}

// Over its byte bound the cache drops its oldest entries, so the newest
// (what replication and the followers' apply read) are always cached.
func TestLogCache_KeepsTheNewest(t *testing.T) {
	t.Parallel()
	seg := mustOpenSegLog(t, t.TempDir(), 64<<20)
	const entry = 1000
	c := newLogCache(seg, 64, 5*(entry+64)) // room for the newest 5 entries
	for i := uint64(1); i <= 200; i++ {
		if err := c.StoreLogs([]*raft.Log{{Index: i, Term: 1, Type: raft.LogCommand, Data: make([]byte, entry)}}); err != nil {
			t.Fatal(err)
		}
		for j := uint64(1); j <= i; j++ {
			s := c.ring[j%64]
			cached := s != nil && s.Index == j
			if want := j+5 > i; cached != want {
				t.Fatalf("after storing %d: entry %d cached %v, want %v", i, j, cached, want)
			}
		}
	}
	if c.bytes != 5*(entry+64) {
		t.Fatalf("cache holds %d bytes, want %d", c.bytes, 5*(entry+64))
	}
}
