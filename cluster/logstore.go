package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// Raft log store kinds (Config.RaftLogStore).
//
// A new data dir gets raft-wal: an append-only segment log whose append
// costs one fsync, where raft-boltdb's copy-on-write B+tree commit costs
// two. The leader's append and each follower's append are both on the
// path of every acknowledgement, so this halves the fsyncs a publish
// waits for. A data dir written by raft-boltdb keeps it: there is no
// conversion, and opening a log with the other kind is refused rather
// than starting from an empty log.
const (
	LogStoreAuto   = ""       // the data dir's kind; raft-wal for a new one
	LogStoreWAL    = "wal"    // raft-wal in raft/wal/
	LogStoreBoltDB = "boltdb" // raft-boltdb in raft/raft.db
)

// logStore is Raft's log and stable store in one.
type logStore interface {
	raft.LogStore
	raft.StableStore
	Close() error
}

// openLogStore opens the Raft log in dir (the data dir's raft/) with the
// kind asked for (LogStoreAuto: whatever dir holds). It returns the kind
// it opened.
func openLogStore(dir, want string, hlog hclog.Logger) (logStore, string, error) {
	boltPath, walDir := filepath.Join(dir, "raft.db"), filepath.Join(dir, "wal")
	var have []string
	for kind, p := range map[string]string{LogStoreBoltDB: boltPath, LogStoreWAL: walDir} {
		if _, err := os.Stat(p); err == nil {
			have = append(have, kind)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("raft log: %w", err)
		}
	}
	kind := want
	switch {
	case len(have) > 1:
		return nil, "", fmt.Errorf("raft log: %s holds both raft.db and wal/: %w", dir, ErrLogStoreMismatch)
	case len(have) == 1 && want != LogStoreAuto && want != have[0]:
		return nil, "", fmt.Errorf("raft log: %s holds a %s log, not %s: %w", dir, have[0], want, ErrLogStoreMismatch)
	case len(have) == 1:
		kind = have[0]
	case want == LogStoreAuto:
		kind = LogStoreWAL
	}
	switch kind {
	case LogStoreWAL:
		if err := os.MkdirAll(walDir, 0o755); err != nil {
			return nil, "", fmt.Errorf("raft log: %w", err)
		}
		meta := &metadb.BoltMetaDB{}
		w, err := wal.Open(walDir, wal.WithLogger(hlog.Named("wal")), wal.WithMetaStore(meta))
		if err != nil {
			return nil, "", errors.Join(fmt.Errorf("open raft log %s: %w", walDir, err), meta.Close())
		}
		return walStore{WAL: w, meta: meta}, kind, nil
	case LogStoreBoltDB:
		b, err := raftboltdb.New(raftboltdb.Options{Path: boltPath})
		if err != nil {
			return nil, "", fmt.Errorf("open raft log %s: %w", boltPath, err)
		}
		return b, kind, nil
	}
	return nil, "", fmt.Errorf("raft log store %q: want %q or %q", want, LogStoreWAL, LogStoreBoltDB)
}

// walStore closes raft-wal's metadata file too: WAL.Close (v0.4.0) leaves
// it open, and its file lock would block the node's next start in the
// same process.
type walStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

func (s walStore) Close() error { return errors.Join(s.WAL.Close(), s.meta.Close()) }
