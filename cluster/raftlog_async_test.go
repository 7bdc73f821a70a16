package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flotilla/flotilla/internal/testutil"
)

// syncGate holds the segment log's syncs (beforeSync) until released.
type syncGate struct {
	mu   sync.Mutex
	open chan struct{}
	held int // syncs that reached the gate
}

func newSyncGate(l *segLog) *syncGate {
	g := &syncGate{open: make(chan struct{})}
	l.setBeforeSync(func() {
		g.mu.Lock()
		g.held++
		ch := g.open
		g.mu.Unlock()
		<-ch
	})
	return g
}

func (g *syncGate) release() { close(g.open) }

func (g *syncGate) reached() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held
}

// The leader's append (StoreLogsAsync) is readable at once and answered
// only after its sync, in order; a follower's append (StoreLogs) waits for
// every earlier append's sync too.
func TestSegLog_StoreLogsAsync(t *testing.T) {
	l := mustOpenSegLog(t, t.TempDir(), 1<<20)
	g := newSyncGate(l)
	results := make(chan uint64, 3)
	for _, b := range [][2]uint64{{1, 4}, {5, 5}, {6, 9}} {
		last := b[1]
		if err := l.StoreLogsAsync(entries(b[0], b[1], 1), func(err error) {
			if err != nil {
				t.Errorf("synced %d: %v", last, err)
			}
			results <- last
		}); err != nil {
			t.Fatalf("store async: %v", err)
		}
	}
	model := map[uint64]*raft.Log{}
	for _, e := range entries(1, 9, 1) {
		model[e.Index] = e
	}
	checkLog(t, l, model, 1, 9) // readable while not yet synced
	testutil.Eventually(t, 5*time.Second, func() error {
		if g.reached() == 0 {
			return errors.New("no sync reached the gate")
		}
		return nil
	})
	select {
	case r := <-results:
		t.Fatalf("append up to %d answered before its sync", r)
	default:
	}
	if got := l.SyncedIndex(); got != 0 {
		t.Fatalf("synced index %d while the first sync is held, want 0", got)
	}
	follower := make(chan error, 1)
	go func() { follower <- l.StoreLogs(entries(10, 10, 1)) }()
	g.release()
	for _, want := range []uint64{4, 5, 9} {
		if got := <-results; got != want {
			t.Fatalf("synced callback for %d, want %d (in order)", got, want)
		}
	}
	if err := <-follower; err != nil {
		t.Fatalf("store: %v", err)
	}
	l.mu.RLock() // syncLoop may still run an empty flush
	unsynced, waiters := len(l.unsynced), len(l.waiters)
	l.mu.RUnlock()
	if unsynced != 0 || waiters != 0 {
		t.Fatalf("after the syncs: %d segments unsynced, %d waiters", unsynced, waiters)
	}
	if got := l.SyncedIndex(); got != 10 {
		t.Fatalf("synced index %d after the syncs, want 10", got)
	}
}

// SyncedIndex follows a cut tail (what is left was synced by the cut) and
// starts at the last index found on disk.
func TestSegLog_SyncedIndexAfterTruncateAndReopen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpenSegLog(t, dir, 1<<20)
	g := newSyncGate(l)
	if err := l.StoreLogsAsync(entries(1, 5, 1), nil); err != nil {
		t.Fatal(err)
	}
	g.release()
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := l.SyncedIndex(); got != 5 {
			return fmt.Errorf("synced index %d, want 5", got)
		}
		return nil
	})
	if err := l.DeleteRange(4, 5); err != nil {
		t.Fatal(err)
	}
	if got := l.SyncedIndex(); got != 3 {
		t.Fatalf("synced index %d after cutting 4..5, want 3", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mustOpenSegLog(t, dir, 1<<20).SyncedIndex(); got != 3 {
		t.Fatalf("reopened synced index %d, want 3", got)
	}
}

// A segment is synced before the next one starts, so a crash can tear only
// the last segment; Close answers appends still waiting for their sync.
func TestSegLog_AsyncRolloverAndClose(t *testing.T) {
	dir := t.TempDir()
	l, err := openSegLog(dir, 256) // a few records per segment
	if err != nil {
		t.Fatal(err)
	}
	g := newSyncGate(l)
	var mu sync.Mutex
	var answered []uint64
	for i := uint64(1); i <= 40; i++ {
		if err := l.StoreLogsAsync(entries(i, i, 1), func(err error) {
			if err != nil {
				t.Errorf("synced %d: %v", i, err)
			}
			mu.Lock()
			answered = append(answered, i)
			mu.Unlock()
		}); err != nil {
			t.Fatalf("store async %d: %v", i, err)
		}
		l.mu.RLock()
		for _, s := range l.unsynced {
			if s != l.segs[len(l.segs)-1] {
				t.Errorf("after %d: segment %d is unsynced but not the last", i, s.first)
			}
		}
		l.mu.RUnlock()
	}
	if len(l.segs) < 3 {
		t.Fatalf("%d segments, want several", len(l.segs))
	}
	g.release()
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if len(answered) != 40 {
		t.Fatalf("%d appends answered after Close, want 40", len(answered))
	}
	for i, idx := range answered {
		if idx != uint64(i+1) {
			t.Fatalf("answer %d is for %d: out of order", i, idx)
		}
	}
	l2 := mustOpenSegLog(t, dir, 256)
	if last, _ := l2.LastIndex(); last != 40 {
		t.Fatalf("reopened last index %d, want 40", last)
	}
}

// After a failed sync nothing is appended any more and the waiting
// appends learn of the failure.
func TestSegLog_AsyncSyncFailureStopsTheLog(t *testing.T) {
	l := mustOpenSegLog(t, t.TempDir(), 1<<20)
	g := newSyncGate(l)
	got := make(chan error, 1)
	if err := l.StoreLogsAsync(entries(1, 1, 1), func(err error) { got <- err }); err != nil {
		t.Fatal(err)
	}
	// the file goes away under the log: its sync fails
	l.mu.Lock()
	_ = l.segs[0].f.Close()
	l.mu.Unlock()
	g.release()
	if err := <-got; err == nil {
		t.Fatal("sync of a closed file reported success")
	}
	if err := l.StoreLogsAsync(entries(2, 2, 1), func(error) {}); err == nil {
		t.Fatal("append after a failed sync accepted")
	}
	if err := l.StoreLogs(entries(2, 2, 1)); err == nil || errors.Is(err, errNotContiguous) {
		t.Fatalf("store after a failed sync: %v, want the sync failure", err)
	}
}

// The last segment is zero-filled ahead of the appends; reopening drops
// the zeros like a torn tail, and a segment's zeros are cut off before the
// next one starts (only the last segment may end in anything but records).
func TestSegLog_ZeroFillAhead(t *testing.T) {
	dir := t.TempDir()
	const segSize = 3 << 20
	l, err := openSegLog(dir, segSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StoreLogs(entries(1, 10, 1)); err != nil {
		t.Fatal(err)
	}
	fileSize := func(s *segment) int64 {
		fi, err := s.f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	first := l.segs[0]
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := fileSize(first); got != segSize {
			return fmt.Errorf("segment file %d bytes, want zero-filled to %d", got, segSize)
		}
		return nil
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// opening the segment cuts the zeros off (before the reopened log's
	// own fillLoop writes new ones)
	seg, err := openSegment(dir, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := seg.f.Stat(); fi.Size() != seg.size || len(seg.offsets) != 10 {
		t.Fatalf("reopened: file %d bytes, %d records ending at %d; want the 10 records only", fi.Size(), len(seg.offsets), seg.size)
	}
	_ = seg.f.Close()
	l = mustOpenSegLog(t, dir, segSize)
	if last, _ := l.LastIndex(); last != 10 {
		t.Fatalf("reopened: last index %d, want 10", last)
	}
	// big entries until the log rolls over twice
	big := func(i uint64) *raft.Log {
		return &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, 1<<20)}
	}
	for i := uint64(11); len(l.segs) < 3; i++ {
		if err := l.StoreLogsAsync([]*raft.Log{big(i)}, func(error) {}); err != nil {
			t.Fatal(err)
		}
	}
	l.mu.RLock()
	for _, s := range l.segs[:len(l.segs)-1] {
		if fi, _ := os.Stat(s.path); fi.Size() != s.size {
			t.Errorf("segment %d: file %d bytes, records end at %d (zeros left before the next segment)", s.first, fi.Size(), s.size)
		}
	}
	last := l.last
	l.mu.RUnlock()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpenSegLog(t, dir, segSize)
	if got, _ := l.LastIndex(); got != last {
		t.Fatalf("reopened: last index %d, want %d", got, last)
	}
}

// Large syncs stop the zero-filling: its second write of every byte then
// costs more than the journal commits it saves (fillMaxSyncBytes).
func TestSegLog_ZeroFillStopsForLargeSyncs(t *testing.T) {
	l := mustOpenSegLog(t, t.TempDir(), 64<<20)
	const n, size = 32, 256 << 10 // 8 MiB in all: past what was filled before the fill stopped
	for i := uint64(1); i <= n; i++ {
		lg := &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, size)}
		if err := l.StoreLogs([]*raft.Log{lg}); err != nil {
			t.Fatal(err)
		}
	}
	l.mu.RLock()
	s, avg := l.segs[len(l.segs)-1], l.syncBytes
	l.mu.RUnlock()
	if avg < fillMaxSyncBytes {
		t.Fatalf("average bytes per sync %d, want >= %d after %d syncs of %d", avg, fillMaxSyncBytes, n, size)
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != s.size {
		t.Fatalf("segment file %d bytes, records end at %d: zeros written ahead of large syncs", fi.Size(), s.size)
	}
}
