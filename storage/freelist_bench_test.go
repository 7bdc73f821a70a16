package storage

import (
	"encoding/binary"
	"path/filepath"
	"testing"
)

// BenchmarkCommitWithLargeFreelist is the cost of one small write
// transaction in a lazily synced store whose file has many free pages (a
// purged or deleted stream, a work queue): what every applied Raft batch
// pays.
func BenchmarkCommitWithLargeFreelist(b *testing.B) {
	s, err := OpenWith(filepath.Join(b.TempDir(), "s.db"), Options{LazySync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	val := make([]byte, 200)
	key := func(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }
	const n = 400000
	for lo := 0; lo < n; lo += 10000 {
		if err := s.Update(func(tx *Tx) error {
			for i := lo; i < lo+10000; i++ {
				if err := tx.Put([]byte("big"), key(i), val); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Update(func(tx *Tx) error {
		for i := range n {
			if err := tx.Delete([]byte("big"), key(i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := s.Update(func(tx *Tx) error { return tx.Put([]byte("small"), key(i), val) }); err != nil {
			b.Fatal(err)
		}
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
			s, err := OpenWith(filepath.Join(b.TempDir(), "s.db"), Options{LazySync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			val := make([]byte, 1024)
			key := func(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }
			put := func(lo, hi int) {
				if err := s.Update(func(tx *Tx) error {
					for i := lo; i < hi; i++ {
						if err := tx.Put([]byte("msgs"), key(i), val); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			const n = 200000
			if purged {
				for lo := 0; lo < n; lo += 10000 {
					put(lo, lo+10000)
				}
				if err := s.Update(func(tx *Tx) error { return tx.DeleteBucket([]byte("msgs")) }); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				put(n+i*160, n+(i+1)*160)
			}
		})
	}
}
