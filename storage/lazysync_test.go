package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// crash closes the file the way a killed process leaves it: no final sync,
// the marker stays.
func crash(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Crash(); err != nil {
		t.Fatal(err)
	}
}

func TestLazySync_TrustAfterProcessCrashNotAfterReboot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	boot1 := Options{LazySync: true, BootID: "boot-1"}
	s, err := OpenWith(path, boot1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.SetLastApplied(7) }); err != nil {
		t.Fatal(err)
	}
	crash(t, s)

	// Same boot: the process died, the kernel kept its writes.
	s, err = OpenWith(path, boot1)
	if err != nil {
		t.Fatalf("reopen after a process crash: %v", err)
	}
	if idx, _ := s.LastApplied(); idx != 7 {
		t.Fatalf("last applied %d after a process crash, want 7", idx)
	}
	crash(t, s)

	// Another boot with the marker still there: the machine crashed while
	// the file was open.
	boot2 := Options{LazySync: true, BootID: "boot-2"}
	if _, err := OpenWith(path, boot2); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("open after a machine crash: %v, want ErrUntrusted", err)
	}
	aside, err := Discard(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(aside); err != nil {
		t.Fatalf("discarded file not kept aside: %v", err)
	}
	s, err = OpenWith(path, boot2)
	if err != nil {
		t.Fatal(err)
	}
	if idx, _ := s.LastApplied(); idx != 0 {
		t.Fatalf("rebuilt store starts at %d", idx)
	}
	// A clean close removes the marker: the next boot trusts the file.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(markerPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("marker after a clean close: %v", err)
	}
	s, err = OpenWith(path, Options{LazySync: true, BootID: "boot-3"})
	if err != nil {
		t.Fatalf("open in a new boot after a clean close: %v", err)
	}
	_ = s.Close()
}

// A lazily synced file skips bbolt's fsync when it grows too (that fsync
// flushed every dirty page the lazy commits had left, stalling the Raft
// log's syncs); a synced one keeps it.
func TestLazySync_NoGrowSync(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		s, err := OpenWith(filepath.Join(t.TempDir(), "s.db"), Options{LazySync: lazy, BootID: "boot-1"})
		if err != nil {
			t.Fatal(err)
		}
		if s.db.NoSync != lazy || s.db.NoGrowSync != lazy {
			t.Errorf("lazy sync %v: bbolt NoSync %v, NoGrowSync %v; want both %v", lazy, s.db.NoSync, s.db.NoGrowSync, lazy)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
