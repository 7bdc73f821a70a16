package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A read that begins after the writer called HoldReaders sees the write:
// it waits for the commit instead of reading the state before it.
func TestStore_HoldReaders_ReadAfterHoldSeesCommit(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	put := func(v string) func(*Tx) error {
		return func(tx *Tx) error { return tx.Put([]byte("b"), []byte("k"), []byte(v)) }
	}
	if err := s.Update(put("old")); err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{})
	seen := make(chan string, 1)
	go func() {
		<-held
		_ = s.View(func(tx *Tx) error {
			seen <- string(tx.Get([]byte("b"), []byte("k")))
			return nil
		})
	}()
	err := s.Update(func(tx *Tx) error {
		if err := put("new")(tx); err != nil {
			return err
		}
		tx.HoldReaders()
		close(held)
		// The reader must still be waiting: a store that let it begin
		// now would show it "old", after the writer told it "new".
		select {
		case v := <-seen:
			return fmt.Errorf("read %q while the commit was held", v)
		case <-time.After(100 * time.Millisecond):
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-seen:
		if v != "new" {
			t.Fatalf("read after the held commit saw %q, want new", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reader still blocked after the commit")
	}
}

// A rolled-back transaction releases the readers too, and they see the
// state before it.
func TestStore_HoldReaders_RollbackReleases(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		_ = tx.SetLastApplied(9)
		tx.HoldReaders()
		tx.HoldReaders() // twice is once
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update error %v", err)
	}
	done := make(chan uint64, 1)
	go func() {
		idx, _ := s.LastApplied()
		done <- idx
	}()
	select {
	case idx := <-done:
		if idx != 0 {
			t.Fatalf("rolled-back index visible: %d", idx)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reader blocked after a rolled-back held transaction")
	}
	if err := s.Update(func(tx *Tx) error { tx.HoldReaders(); return tx.SetLastApplied(10) }); err != nil {
		t.Fatal(err)
	}
	if idx, _ := s.LastApplied(); idx != 10 {
		t.Fatalf("last applied %d after the second update", idx)
	}
}

// A read transaction that was open before the hold keeps its view and
// does not hold the writer up: a snapshot being written out must not
// stall the writer, nor the writer it.
func TestStore_HoldReaders_OpenReadKeepsGoing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := mustOpen(t, filepath.Join(dir, "state.db"))
	if err := s.Update(func(tx *Tx) error { return tx.SetLastApplied(1) }); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	if err := s.Update(func(tx *Tx) error { tx.HoldReaders(); return tx.SetLastApplied(2) }); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "copy.db")
	f, err := os.Create(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snap.WriteTo(f); err != nil {
		t.Fatalf("snapshot after a held commit: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if idx, err := mustOpen(t, copyPath).LastApplied(); err != nil || idx != 1 {
		t.Fatalf("snapshot opened before the held commit holds index %d (%v), want 1", idx, err)
	}
	if idx, _ := s.LastApplied(); idx != 2 {
		t.Fatalf("store after the held commit: index %d, want 2", idx)
	}
}
