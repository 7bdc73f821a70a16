package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Raft log store kinds (Config.RaftLogStore).
//
// A new data dir gets the segment log (raftlog.go): one fsync per append,
// where raft-boltdb's B+tree commit costs two. Raft's few stable values
// (term, vote) stay in a small raft-boltdb file, written only on
// elections. A data dir written by raft-boltdb (raft/raft.db) keeps it:
// there is no conversion, and opening a log with the other kind is
// refused rather than starting from an empty log.
const (
	LogStoreAuto     = ""         // the data dir's kind; segments for a new one
	LogStoreSegments = "segments" // raft/log/*.seg plus raft/stable.db
	LogStoreBoltDB   = "boltdb"   // raft/raft.db
)

// logStore is Raft's log and stable store.
type logStore interface {
	raft.LogStore
	raft.StableStore
	Close() error
}

// openLogStore opens the Raft log in dir (the data dir's raft/) with the
// kind asked for (LogStoreAuto: whatever dir holds). It returns the kind
// it opened.
func openLogStore(dir, want string) (logStore, string, error) {
	boltPath, segDir := filepath.Join(dir, "raft.db"), filepath.Join(dir, "log")
	var have []string
	for _, k := range []struct{ kind, path string }{{LogStoreBoltDB, boltPath}, {LogStoreSegments, segDir}} {
		if _, err := os.Stat(k.path); err == nil {
			have = append(have, k.kind)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("raft log: %w", err)
		}
	}
	kind := want
	switch {
	case len(have) > 1:
		return nil, "", fmt.Errorf("raft log: %s holds both raft.db and log/: %w", dir, ErrLogStoreMismatch)
	case len(have) == 1 && want != LogStoreAuto && want != have[0]:
		return nil, "", fmt.Errorf("raft log: %s holds a %s log, not %s: %w", dir, have[0], want, ErrLogStoreMismatch)
	case len(have) == 1:
		kind = have[0]
	case want == LogStoreAuto:
		kind = LogStoreSegments
	}
	switch kind {
	case LogStoreSegments:
		stable, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "stable.db")})
		if err != nil {
			return nil, "", fmt.Errorf("open raft stable store: %w", err)
		}
		log, err := openSegLog(segDir, defaultSegmentSize)
		if err != nil {
			return nil, "", errors.Join(err, stable.Close())
		}
		return &segStore{segLog: log, stable: stable}, kind, nil
	case LogStoreBoltDB:
		b, err := raftboltdb.New(raftboltdb.Options{Path: boltPath})
		if err != nil {
			return nil, "", fmt.Errorf("open raft log %s: %w", boltPath, err)
		}
		return b, kind, nil
	}
	return nil, "", fmt.Errorf("raft log store %q: want %q or %q", want, LogStoreSegments, LogStoreBoltDB)
}

// segStore is the segment log plus a raft-boltdb file for stable values.
type segStore struct {
	*segLog
	stable *raftboltdb.BoltStore
}

// The status reports how far the segment log is synced (Node.logSyncedIndex).
var _ interface{ SyncedIndex() uint64 } = (*segStore)(nil)

func (s *segStore) Set(k, v []byte) error              { return s.stable.Set(k, v) }
func (s *segStore) Get(k []byte) ([]byte, error)       { return s.stable.Get(k) }
func (s *segStore) SetUint64(k []byte, v uint64) error { return s.stable.SetUint64(k, v) }
func (s *segStore) GetUint64(k []byte) (uint64, error) { return s.stable.GetUint64(k) }

func (s *segStore) Close() error { return errors.Join(s.segLog.Close(), s.stable.Close()) }
