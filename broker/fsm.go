package broker

import (
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/storage"
)

// FSM is the replicated state machine (cluster.StateMachine). It applies
// each batch of committed entries in one storage transaction together with
// the last applied index, so replay after a restart skips what is already
// in the store. Streams and consumers (later issues) are applied here.
type FSM struct {
	store *storage.Store
	log   *zap.Logger
}

var _ cluster.StateMachine = (*FSM)(nil)

// NewFSM returns an FSM over an open store.
func NewFSM(store *storage.Store, log *zap.Logger) *FSM {
	return &FSM{store: store, log: log.Named("fsm")}
}

// ApplyBatch implements cluster.StateMachine. An entry that cannot be
// decoded, or of an unknown mandatory type, panics: replicas must never
// silently diverge. A storage failure panics too, because the entry is
// committed and cannot be skipped.
func (f *FSM) ApplyBatch(entries []cluster.Entry) []any {
	results := make([]any, len(entries))
	err := f.store.Update(func(tx *storage.Tx) error {
		last := tx.LastApplied()
		for i, e := range entries {
			if e.Index <= last {
				continue // replayed after a restart: already in the store
			}
			results[i] = f.apply(tx, e)
		}
		if idx := entries[len(entries)-1].Index; idx > last {
			return tx.SetLastApplied(idx)
		}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("fsm: apply batch ending at %d: %v", entries[len(entries)-1].Index, err))
	}
	return results
}

// apply is the one switch over command types: one line per type.
func (f *FSM) apply(tx *storage.Tx, e cluster.Entry) any {
	t, _, err := DecodeCommand(e.Data)
	if err != nil {
		panic(fmt.Sprintf("fsm: undecodable entry at index %d: %v", e.Index, err))
	}
	switch t {
	case CmdNoop:
		return nil
	default:
		if t&cmdOptionalBit != 0 {
			f.log.Warn("ignoring unknown optional command", zap.Uint64("raft_index", e.Index), zap.Stringer("cmd_type", t))
			return nil
		}
		panic(fmt.Sprintf("fsm: unknown command type %d at index %d", t, e.Index))
	}
}

// Snapshot implements cluster.StateMachine with a read transaction.
func (f *FSM) Snapshot() (cluster.Snapshot, error) {
	s, err := f.store.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("fsm snapshot: %w", err)
	}
	return s, nil
}

// Restore implements cluster.StateMachine by swapping in the snapshot file.
func (f *FSM) Restore(r io.Reader) error {
	if err := f.store.Restore(r); err != nil {
		return fmt.Errorf("fsm restore: %w", err)
	}
	return nil
}
