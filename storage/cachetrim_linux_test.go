package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flotilla/flotilla/internal/testutil"
)

// fill appends n records of size bytes under sequential keys, 100 per
// transaction, as the FSM appends messages.
func fill(t *testing.T, s *Store, from, n, size int) {
	t.Helper()
	for i := from; i < from+n; i += 100 {
		if err := s.Update(func(tx *Tx) error {
			for j := i; j < min(i+100, from+n); j++ {
				if err := tx.Put([]byte("msgs"), binary.BigEndian.AppendUint64(nil, uint64(j)), bytes.Repeat([]byte{byte(j)}, size)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// cachedShare is the share of path's pages in the page cache.
func cachedShare(t *testing.T, path string) (float64, int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	res := testutil.ResidentPages(t, path, fi.Size())
	var n int
	for _, r := range res {
		if r {
			n++
		}
	}
	return float64(n) / float64(len(res)), len(res)
}

// trimmed waits until at most a quarter of path's pages are cached: what
// bbolt has mapped (the meta and branch pages and the leaves its
// transactions read) stays, and so do the pages the last trim only
// started writing back.
func trimmed(t *testing.T, path string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		if share, pages := cachedShare(t, path); share > 0.25 {
			return fmt.Errorf("%.0f%% of %d pages still cached", share*100, pages)
		}
		return nil
	})
}

// A lazily synced store's written pages leave the page cache within a few
// trim intervals, and every record still reads back (from the disk).
func TestStore_CacheTrimDropsWrittenPages(t *testing.T) {
	path := filepath.Join(testutil.CacheTestDir(t), "state.db")
	s, err := OpenWith(path, Options{LazySync: true, BootID: "boot-1", CacheTrim: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n, size = 8000, 1000
	fill(t, s, 0, n, size)
	trimmed(t, path)
	if err := s.View(func(tx *Tx) error {
		for i := range n {
			v := tx.Get([]byte("msgs"), binary.BigEndian.AppendUint64(nil, uint64(i)))
			if !bytes.Equal(v, bytes.Repeat([]byte{byte(i)}, size)) {
				return fmt.Errorf("record %d after the trim: %d bytes", i, len(v))
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Without CacheTrim (and for a synced store) the written pages stay: what
// the trim test measures is the trim.
func TestStore_NoCacheTrimKeepsPages(t *testing.T) {
	for _, opts := range []Options{{LazySync: true, BootID: "boot-1"}, {CacheTrim: 20 * time.Millisecond}} {
		path := filepath.Join(testutil.CacheTestDir(t), "state.db")
		s, err := OpenWith(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		if s.trimStop != nil {
			t.Fatalf("%+v: a trim loop runs", opts)
		}
		fill(t, s, 0, 8000, 1000)
		if share, pages := cachedShare(t, path); share < 0.9 {
			t.Errorf("%+v: only %.0f%% of %d pages cached", opts, share*100, pages)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// After Restore swaps the file, the trim follows the new one.
func TestStore_CacheTrimFollowsRestore(t *testing.T) {
	dir := testutil.CacheTestDir(t)
	src := mustOpen(t, filepath.Join(dir, "src.db"))
	fill(t, src, 0, 100, 100)
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	path := filepath.Join(dir, "state.db")
	s, err := OpenWith(path, Options{LazySync: true, BootID: "boot-1", CacheTrim: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	fill(t, s, 100, 8000, 1000)
	trimmed(t, path)
}
