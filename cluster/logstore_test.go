package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// A new data dir gets raft-wal; a dir keeps the format it was written in,
// entries survive a reopen, and asking for the other format (or finding
// both) is refused rather than starting from an empty log.
func TestOpenLogStore_Kinds(t *testing.T) {
	hlog := hclog.NewNullLogger()
	open := func(t *testing.T, dir, want string) (logStore, string, error) {
		t.Helper()
		s, kind, err := openLogStore(dir, want, hlog)
		if err == nil {
			t.Cleanup(func() { _ = s.Close() })
		}
		return s, kind, err
	}
	write := func(t *testing.T, s logStore, idx uint64) {
		t.Helper()
		if err := s.StoreLogs([]*raft.Log{{Index: idx, Term: 1, Type: raft.LogCommand, Data: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
			t.Fatal(err)
		}
	}
	reopen := func(t *testing.T, s logStore, dir, want, wantKind string) {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, kind, err := open(t, dir, want)
		if err != nil || kind != wantKind {
			t.Fatalf("reopen with %q: kind %q, err %v; want %q", want, kind, err, wantKind)
		}
		var l raft.Log
		if err := s2.GetLog(1, &l); err != nil || string(l.Data) != "x" {
			t.Fatalf("entry 1 after reopen: %+v, %v", l, err)
		}
		if term, err := s2.GetUint64([]byte("CurrentTerm")); err != nil || term != 7 {
			t.Fatalf("stable store after reopen: %d, %v", term, err)
		}
	}

	t.Run("new dir is wal", func(t *testing.T) {
		dir := t.TempDir()
		s, kind, err := open(t, dir, LogStoreAuto)
		if err != nil || kind != LogStoreWAL {
			t.Fatalf("kind %q, err %v", kind, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "wal")); err != nil {
			t.Fatal(err)
		}
		write(t, s, 1)
		reopen(t, s, dir, LogStoreAuto, LogStoreWAL)
		if _, _, err := openLogStore(dir, LogStoreBoltDB, hlog); !errors.Is(err, ErrLogStoreMismatch) {
			t.Fatalf("boltdb on a wal dir: %v", err)
		}
	})
	t.Run("boltdb dir keeps boltdb", func(t *testing.T) {
		dir := t.TempDir()
		s, kind, err := open(t, dir, LogStoreBoltDB)
		if err != nil || kind != LogStoreBoltDB {
			t.Fatalf("kind %q, err %v", kind, err)
		}
		write(t, s, 1)
		reopen(t, s, dir, LogStoreAuto, LogStoreBoltDB)
		if _, _, err := openLogStore(dir, LogStoreWAL, hlog); !errors.Is(err, ErrLogStoreMismatch) {
			t.Fatalf("wal on a boltdb dir: %v", err)
		}
	})
	t.Run("both is refused", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "raft.db"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, "wal"), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, _, err := openLogStore(dir, LogStoreAuto, hlog); !errors.Is(err, ErrLogStoreMismatch) {
			t.Fatalf("both formats: %v", err)
		}
	})
	t.Run("unknown kind", func(t *testing.T) {
		if _, _, err := openLogStore(t.TempDir(), "leveldb", hlog); err == nil {
			t.Fatal("unknown kind accepted")
		}
	})
}
