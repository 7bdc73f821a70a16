package cluster

import (
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"
)

// Entry is one committed command handed to the StateMachine.
type Entry struct {
	Index uint64
	Term  uint64
	Data  []byte
	// Early, when not nil, hands the entry's result to the proposer now,
	// ahead of ApplyBatch's return: Proposal.Wait returns it at once. It
	// is set on the node that proposed the entry while the proposer
	// waits. The entry is committed, so a state machine may call it once
	// the result is final, before its own storage commit: a crash before
	// that commit replays the entry to the same result. It must make sure
	// that whoever learns the result and then reads sees it (see
	// storage.Tx.HoldReaders). It does not block; only the first call
	// counts.
	Early func(result any)
}

// StateMachine is what the domain (broker) implements to be replicated.
// Commands are opaque bytes to this package.
type StateMachine interface {
	// ApplyBatch applies committed commands in order and returns one result
	// per entry (returned to the proposer on the leader). It must be
	// deterministic, and it must not block on the network or on clients.
	// Applying a batch in one storage transaction is the point of batching.
	ApplyBatch(entries []Entry) []any
	// Snapshot captures the state at the last applied entry. The returned
	// Snapshot is written out while later entries keep being applied, so it
	// must be a consistent point-in-time view (e.g. a read transaction).
	Snapshot() (Snapshot, error)
	// Restore replaces the whole state with a snapshot's contents.
	Restore(r io.Reader) error
	// Size is about what a Snapshot would write now, in bytes. The
	// snapshot policy weighs it against the log written since the last
	// snapshot (snapshot_policy.go).
	Size() (int64, error)
}

// Snapshot is a point-in-time state that can be written out once.
type Snapshot interface {
	WriteTo(w io.Writer) (int64, error)
	Release()
}

// fsmAdapter turns a StateMachine into raft.BatchingFSM so that no other
// package needs raft types.
type fsmAdapter struct {
	sm      StateMachine
	applied func(index uint64)
	early   *earlyAnswers // nil: no early answers
	// book counts the command bytes applied and learns of each snapshot
	// written.
	book *snapshotBook
	// Touched only on raft's FSM goroutine, which runs ApplyBatch and
	// Snapshot one at a time.
	lastIndex uint64
}

var _ raft.BatchingFSM = (*fsmAdapter)(nil)

func (f *fsmAdapter) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch passes the command entries through and answers configuration
// and no-op entries with nil: membership is raft's own state.
func (f *fsmAdapter) ApplyBatch(logs []*raft.Log) []any {
	results := make([]any, len(logs))
	entries := make([]Entry, 0, len(logs))
	pos := make([]int, 0, len(logs))
	var bytes uint64
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		e := Entry{Index: l.Index, Term: l.Term, Data: l.Data}
		if f.early != nil {
			if p := f.early.take(l.Data); p != nil {
				e.Early = p.answer
			}
		}
		entries = append(entries, e)
		pos = append(pos, i)
		bytes += uint64(len(l.Data))
	}
	f.book.applied.Add(bytes)
	if len(entries) > 0 {
		out := f.sm.ApplyBatch(entries)
		if len(out) != len(entries) {
			panic(fmt.Sprintf("state machine returned %d results for %d entries", len(out), len(entries)))
		}
		for i, r := range out {
			results[pos[i]] = r
		}
	}
	if len(logs) > 0 {
		f.lastIndex = logs[len(logs)-1].Index
		if f.applied != nil {
			f.applied(f.lastIndex)
		}
	}
	return results
}

// Snapshot captures the state machine's view together with the index and
// the applied byte count it corresponds to, for the snapshot policy.
func (f *fsmAdapter) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.sm.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("snapshot state machine: %w", err)
	}
	return &snapshotAdapter{s: s, book: f.book, index: f.lastIndex, applied: f.book.applied.Load()}, nil
}

func (f *fsmAdapter) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.sm.Restore(rc); err != nil {
		return fmt.Errorf("restore state machine: %w", err)
	}
	return nil
}

// snapshotAdapter writes a Snapshot into raft's sink, cancelling the sink
// on failure so a partial snapshot is never kept. The write is paced
// (openPacedSink) so that a big snapshot never stands between the Raft
// log's fsyncs and the disk.
type snapshotAdapter struct {
	s       Snapshot
	book    *snapshotBook
	index   uint64 // last index applied when the state was captured
	applied uint64 // snapshotBook.applied then
}

func (a *snapshotAdapter) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	w := a.book.pacedSink(sink)
	n, err := a.s.WriteTo(w)
	if cerr := w.close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("close snapshot sink: %w", err)
	}
	a.book.persisted(a.index, a.applied, n, time.Since(start))
	return nil
}

func (a *snapshotAdapter) Release() { a.s.Release() }
