package storage

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func mustOpen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStore_LastAppliedSurvivesReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	s := mustOpen(t, path)
	if idx, err := s.LastApplied(); err != nil || idx != 0 {
		t.Fatalf("fresh store: %d %v", idx, err)
	}
	if err := s.Update(func(tx *Tx) error {
		if err := tx.Put([]byte("b"), []byte("k"), []byte("v")); err != nil {
			return err
		}
		return tx.SetLastApplied(42)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, path)
	if idx, _ := s.LastApplied(); idx != 42 {
		t.Fatalf("last applied after reopen %d", idx)
	}
	_ = s.View(func(tx *Tx) error {
		if got := tx.Get([]byte("b"), []byte("k")); string(got) != "v" {
			t.Fatalf("value %q", got)
		}
		return nil
	})
}

func TestStore_FailedUpdateRollsBack(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		_ = tx.SetLastApplied(7)
		_ = tx.Put([]byte("b"), []byte("k"), []byte("v"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update error %v", err)
	}
	if idx, _ := s.LastApplied(); idx != 0 {
		t.Fatalf("rolled-back index visible: %d", idx)
	}
}

func TestStore_SnapshotRestore(t *testing.T) {
	t.Parallel()
	src := mustOpen(t, filepath.Join(t.TempDir(), "a.db"))
	if err := src.Update(func(tx *Tx) error {
		for i := range 100 {
			if err := tx.Put([]byte("msgs"), []byte{byte(i)}, bytes.Repeat([]byte{byte(i)}, 100)); err != nil {
				return err
			}
		}
		return tx.SetLastApplied(100)
	}); err != nil {
		t.Fatal(err)
	}
	size, err := src.Size()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot do not leak into it.
	done := make(chan error, 1)
	go func() { done <- src.Update(func(tx *Tx) error { return tx.SetLastApplied(101) }) }()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != size {
		t.Fatalf("snapshot wrote %d bytes, Size said %d", buf.Len(), size)
	}

	dst := mustOpen(t, filepath.Join(t.TempDir(), "b.db"))
	_ = dst.Update(func(tx *Tx) error { return tx.Put([]byte("old"), []byte("x"), []byte("y")) })
	if err := dst.Restore(&buf); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if idx, _ := dst.LastApplied(); idx != 100 {
		t.Fatalf("restored index %d, want 100", idx)
	}
	_ = dst.View(func(tx *Tx) error {
		if tx.Get([]byte("old"), []byte("x")) != nil {
			t.Fatal("restore kept old state")
		}
		n := 0
		_ = tx.ForEach([]byte("msgs"), func(k, v []byte) error { n++; return nil })
		if n != 100 {
			t.Fatalf("%d records restored", n)
		}
		return nil
	})
}

func TestStore_RestoreRejectsGarbage(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	_ = s.Update(func(tx *Tx) error { return tx.SetLastApplied(5) })
	err := s.Restore(strings.NewReader("definitely not a bbolt file"))
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("restore of garbage: %v, want ErrCorrupt", err)
	}
	if idx, _ := s.LastApplied(); idx != 5 {
		t.Fatalf("store changed by a failed restore: %d", idx)
	}
}

func TestStore_ClosedStore(t *testing.T) {
	t.Parallel()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if err := s.Update(func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("update after close: %v", err)
	}
}
