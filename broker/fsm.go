package broker

import (
	"fmt"
	"io"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/storage"
)

// FSM is the replicated state machine (cluster.StateMachine). It applies
// each batch of committed entries in one storage transaction together with
// the last applied index, so replay after a restart skips what is already
// in the store. Streams live here (stream_*.go); consumers will too.
//
// Concurrency: raft calls ApplyBatch, Snapshot and Restore one at a time.
// The read methods (StreamInfo, GetMsg, StreamForSubject, ...) may run
// concurrently with them: they read committed state through storage read
// transactions and the catalog, an immutable value swapped atomically
// after each commit that changed a stream definition.
type FSM struct {
	store *storage.Store
	log   *zap.Logger
	cat   atomic.Pointer[catalog]
	ac    applyCtx // reused by every ApplyBatch
	hook  atomic.Pointer[func()]
}

// SetApplyHook installs a function called after every committed batch
// (nil removes it): the consumer engine wakes up to deliver new messages.
// It must not block.
func (f *FSM) SetApplyHook(h func()) {
	if h == nil {
		f.hook.Store(nil)
		return
	}
	f.hook.Store(&h)
}

var _ cluster.StateMachine = (*FSM)(nil)

// NewFSM returns an FSM over an open store, loading the stream catalog
// from it. A store whose stream definitions cannot be read is corrupt:
// NewFSM panics rather than serve or vote with a damaged state.
func NewFSM(store *storage.Store, log *zap.Logger) *FSM {
	f := &FSM{store: store, log: log.Named("fsm")}
	if err := f.loadCatalog(); err != nil {
		panic(fmt.Sprintf("fsm: %v", err))
	}
	return f
}

// loadCatalog rebuilds the in-memory catalog (stream definitions and the
// capture index) from the store.
func (f *FSM) loadCatalog() error {
	return f.store.View(func(tx *storage.Tx) error {
		c, err := loadCatalog(tx)
		if err != nil {
			return err
		}
		f.cat.Store(c)
		return nil
	})
}

// ApplyBatch implements cluster.StateMachine. An entry that cannot be
// decoded, or of an unknown mandatory type, panics: replicas must never
// silently diverge. A storage failure panics too, because the entry is
// committed and cannot be skipped.
func (f *FSM) ApplyBatch(entries []cluster.Entry) []any {
	results := make([]any, len(entries))
	ac := &f.ac
	defer ac.end()
	err := f.store.Update(func(tx *storage.Tx) error {
		if err := ac.begin(tx, f.cat.Load()); err != nil {
			return err
		}
		last := tx.LastApplied()
		for i, e := range entries {
			if e.Index <= last {
				continue // replayed after a restart: already in the store
			}
			r, err := f.apply(ac, e)
			if err != nil {
				return fmt.Errorf("apply %d: %w", e.Index, err)
			}
			results[i] = r
		}
		if err := ac.flush(); err != nil {
			return err
		}
		if idx := entries[len(entries)-1].Index; idx > last {
			if err := tx.SetLastApplied(idx); err != nil {
				return err
			}
		}
		answerEarly(tx, entries, results)
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("fsm: apply batch ending at %d: %v", entries[len(entries)-1].Index, err))
	}
	if ac.catChanged {
		f.cat.Store(ac.cat) // only once committed: readers never see uncommitted streams
	}
	if h := f.hook.Load(); h != nil {
		(*h)()
	}
	return results
}

// answerEarly hands this node's waiting publishers their acknowledgements
// while bbolt still has to commit the batch: about half of a one-message
// apply's CPU time, which a synchronous publisher otherwise waits for. The
// entries are committed in Raft and their results final (nothing is left
// but the commit), and a crash before the commit replays them to the same
// acknowledgements. Reads that begin from here on wait for the commit
// (HoldReaders), so a client that has its acknowledgement and then reads
// the stream through this node finds the message. Only publish batches are
// answered early: other commands change the catalog, which is swapped
// after the commit, or answer with state read after it.
func answerEarly(tx *storage.Tx, entries []cluster.Entry, results []any) {
	held := false
	for i := range entries {
		if entries[i].Early == nil {
			continue
		}
		if _, ok := results[i].([]PubAck); !ok {
			continue
		}
		if !held {
			tx.HoldReaders()
			held = true
		}
		entries[i].Early(results[i])
	}
}

// apply is the one switch over command types: one line per type.
func (f *FSM) apply(ac *applyCtx, e cluster.Entry) (any, error) {
	t, body, err := DecodeCommand(e.Data)
	if err != nil {
		panic(fmt.Sprintf("fsm: undecodable entry at index %d: %v", e.Index, err))
	}
	switch t {
	case CmdNoop:
		return nil, nil
	case CmdStreamCreate:
		return f.applyStreamCreate(ac, e.Index, body)
	case CmdStreamUpdate:
		return f.applyStreamUpdate(ac, e.Index, body)
	case CmdStreamDelete:
		return f.applyStreamDelete(ac, e.Index, body)
	case CmdStreamPurge:
		return f.applyStreamPurge(ac, e.Index, body)
	case CmdMsgDelete:
		return f.applyMsgDelete(ac, e.Index, body)
	case CmdPublishBatch:
		return f.applyPublishBatch(ac, e.Index, body)
	case CmdExpire:
		return f.applyExpire(ac, e.Index, body)
	case CmdConsumerCreate:
		return f.applyConsumerCreate(ac, e.Index, body)
	case CmdConsumerDelete:
		return f.applyConsumerDelete(ac, e.Index, body)
	case CmdConsumerOps:
		return f.applyConsumerOps(ac, e.Index, body)
	default:
		if t&cmdOptionalBit != 0 {
			f.log.Warn("ignoring unknown optional command", zap.Uint64("raft_index", e.Index), zap.Stringer("cmd_type", t))
			return nil, nil
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

// Size implements cluster.StateMachine: a snapshot is the store file.
func (f *FSM) Size() (int64, error) { return f.store.Size() }

// Restore implements cluster.StateMachine by swapping in the snapshot file
// and rebuilding the catalog from it.
func (f *FSM) Restore(r io.Reader) error {
	if err := f.store.Restore(r); err != nil {
		return fmt.Errorf("fsm restore: %w", err)
	}
	if err := f.loadCatalog(); err != nil {
		return fmt.Errorf("fsm restore: %w", err)
	}
	return nil
}
