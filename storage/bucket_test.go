package storage

import (
	"encoding/binary"
	"path/filepath"
	"testing"
)

func key(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

func TestBucket_CursorOrderSeekAndDelete(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	if err := s.Update(func(tx *Tx) error {
		b, err := tx.CreateBucket([]byte("log"))
		if err != nil {
			return err
		}
		b.SetFillPercent(0.9)
		for i := uint64(1); i <= 10; i++ {
			if err := b.Put(key(i*10), []byte{byte(i)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		op   func(c *Cursor) ([]byte, []byte)
		want uint64 // 0 = no key
	}{
		{"first", (*Cursor).First, 10},
		{"last", (*Cursor).Last, 100},
		{"seek exact", func(c *Cursor) ([]byte, []byte) { return c.Seek(key(50)) }, 50},
		{"seek between", func(c *Cursor) ([]byte, []byte) { return c.Seek(key(51)) }, 60},
		{"seek past end", func(c *Cursor) ([]byte, []byte) { return c.Seek(key(101)) }, 0},
		{"next", func(c *Cursor) ([]byte, []byte) { c.Seek(key(50)); return c.Next() }, 60},
		{"prev", func(c *Cursor) ([]byte, []byte) { c.Seek(key(50)); return c.Prev() }, 40},
		{"prev before first", func(c *Cursor) ([]byte, []byte) { c.First(); return c.Prev() }, 0},
	}
	_ = s.View(func(tx *Tx) error {
		b := tx.Bucket([]byte("log"))
		for _, tt := range tests {
			k, _ := tt.op(b.Cursor())
			var got uint64
			if k != nil {
				got = binary.BigEndian.Uint64(k)
			}
			if got != tt.want {
				t.Errorf("%s: key %d, want %d", tt.name, got, tt.want)
			}
		}
		return nil
	})

	// Delete the head repeatedly through the cursor, repositioning after
	// each write as the Cursor doc asks.
	if err := s.Update(func(tx *Tx) error {
		c := tx.Bucket([]byte("log")).Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) < 40; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = s.View(func(tx *Tx) error {
		if k, _ := tx.Bucket([]byte("log")).Cursor().First(); binary.BigEndian.Uint64(k) != 40 {
			t.Fatalf("first after deletes %x", k)
		}
		return nil
	})
}

func TestBucket_AbsentAndDeleted(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	if err := s.Update(func(tx *Tx) error {
		if tx.Bucket([]byte("nope")) != nil {
			t.Fatal("absent bucket returned")
		}
		// A nil bucket reads as empty.
		var nb *Bucket
		if nb.Get([]byte("k")) != nil {
			t.Fatal("nil bucket get")
		}
		if k, _ := nb.Cursor().First(); k != nil {
			t.Fatal("nil bucket cursor")
		}
		if err := nb.Cursor().Delete(); err != nil {
			t.Fatal(err)
		}
		if err := tx.DeleteBucket([]byte("nope")); err != nil {
			t.Fatalf("delete absent bucket: %v", err)
		}
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		if err := b.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		if again, _ := tx.CreateBucket([]byte("b")); string(again.Get([]byte("k"))) != "v" {
			t.Fatal("CreateBucket on an existing bucket lost data")
		}
		if err := b.Delete([]byte("k")); err != nil {
			return err
		}
		if err := b.Delete([]byte("missing")); err != nil {
			t.Fatalf("delete missing key: %v", err)
		}
		if !tx.Writable() {
			t.Fatal("update tx not writable")
		}
		return tx.DeleteBucket([]byte("b"))
	}); err != nil {
		t.Fatal(err)
	}
	_ = s.View(func(tx *Tx) error {
		if tx.Writable() {
			t.Fatal("view tx writable")
		}
		if tx.Bucket([]byte("b")) != nil {
			t.Fatal("deleted bucket still there")
		}
		if _, err := tx.CreateBucket([]byte("x")); err == nil {
			t.Fatal("bucket created in a read transaction")
		}
		return nil
	})
}

// Prev must step over leaves emptied earlier in the same write
// transaction. bbolt's own Prev returns nil there, as at the start of the
// bucket, which made a work queue's subject-chain walk miss its
// predecessor and stop the apply as corrupt.
func TestBucket_PrevOverLeavesEmptiedInTheTransaction(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	const n = 20000 // many leaves
	if err := s.Update(func(tx *Tx) error {
		b, err := tx.CreateBucket([]byte("chain"))
		if err != nil {
			return err
		}
		for i := uint64(1); i <= n; i++ {
			if err := b.Put(key(i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error {
		b := tx.Bucket([]byte("chain"))
		// Empty whole leaves between 100 and 15000, then walk back over them.
		for i := uint64(101); i < 15000; i++ {
			if err := b.Delete(key(i)); err != nil {
				return err
			}
		}
		c := b.Cursor()
		c.Seek(key(15000))
		k, _ := c.Prev()
		if k == nil || binary.BigEndian.Uint64(k) != 100 {
			t.Errorf("Prev from 15000 over the emptied leaves: %v, want 100", k)
		}
		// And the real start still ends a walk.
		c.First()
		if k, _ := c.Prev(); k != nil {
			t.Errorf("Prev from the first key: %v, want none", k)
		}
		c.Seek(key(2))
		if k, _ := c.Prev(); k == nil || binary.BigEndian.Uint64(k) != 1 {
			t.Errorf("Prev from 2: %v, want 1", k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
