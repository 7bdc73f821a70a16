package storage

import (
	"encoding/binary"
	"path/filepath"
	"testing"
)

// openLazyBench opens a lazily synced store in a temp dir, closed with b.
func openLazyBench(b *testing.B) *Store {
	b.Helper()
	s, err := OpenWith(filepath.Join(b.TempDir(), "s.db"), Options{LazySync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func benchKey(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

// putRange stores val under the keys lo..hi-1 of bucket in one write
// transaction.
func putRange(b *testing.B, s *Store, bucket []byte, lo, hi int, val []byte) {
	b.Helper()
	if err := s.Update(func(tx *Tx) error {
		for i := lo; i < hi; i++ {
			if err := tx.Put(bucket, benchKey(i), val); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCommitWithLargeFreelist is the cost of one small write
// transaction in a lazily synced store whose file has many free pages (a
// purged or deleted stream, a work queue): what every applied Raft batch
// pays.
func BenchmarkCommitWithLargeFreelist(b *testing.B) {
	s := openLazyBench(b)
	val := make([]byte, 200)
	const n = 400000
	for lo := 0; lo < n; lo += 10000 {
		putRange(b, s, []byte("big"), lo, lo+10000, val)
	}
	if err := s.Update(func(tx *Tx) error {
		for i := range n {
			if err := tx.Delete([]byte("big"), benchKey(i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		putRange(b, s, []byte("small"), i, i+1, val)
	}
}

// BenchmarkAppendAfterPurge is one applied publish batch (160 records of
// 1 KiB appended in one write transaction) into a file whose earlier
// records were all deleted, as after a stream purge (the new pages come
// from the free-page map, carved out of large free spans), and, to compare,
// into a file that has never freed a page.
func BenchmarkAppendAfterPurge(b *testing.B) {
	for _, purged := range []bool{false, true} {
		name := "fresh"
		if purged {
			name = "purged"
		}
		b.Run(name, func(b *testing.B) {
			s := openLazyBench(b)
			val := make([]byte, 1024)
			const n = 200000
			if purged {
				for lo := 0; lo < n; lo += 10000 {
					putRange(b, s, []byte("msgs"), lo, lo+10000, val)
				}
				if err := s.Update(func(tx *Tx) error { return tx.DeleteBucket([]byte("msgs")) }); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; b.Loop(); i++ { // b.Loop leaves the setup above out
				putRange(b, s, []byte("msgs"), n+i*160, n+(i+1)*160, val)
			}
		})
	}
}
