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
