package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flotilla/flotilla/metrics"
)

func testEntry(idx, term uint64) *raft.Log {
	l := &raft.Log{Index: idx, Term: term, Type: raft.LogCommand, Data: fmt.Appendf(nil, "entry-%d-%d", idx, term)}
	if idx%3 == 0 {
		l.Extensions = []byte{byte(idx)}
		l.AppendedAt = time.Unix(0, int64(idx)*1000)
		l.Type = raft.LogConfiguration
	}
	return l
}

func entries(from, to, term uint64) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, testEntry(i, term))
	}
	return out
}

func mustOpenSegLog(t *testing.T, dir string, segSize int64) *segLog {
	t.Helper()
	l, err := openSegLog(dir, segSize)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// checkLog compares l with the model: its bounds and every entry.
func checkLog(t *testing.T, l *segLog, model map[uint64]*raft.Log, first, last uint64) {
	t.Helper()
	f, _ := l.FirstIndex()
	la, _ := l.LastIndex()
	if f != first || la != last {
		t.Fatalf("bounds %d..%d, want %d..%d", f, la, first, last)
	}
	for i := first; i <= last && last > 0; i++ {
		var got raft.Log
		if err := l.GetLog(i, &got); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		want := model[i]
		if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) ||
			!bytes.Equal(got.Extensions, want.Extensions) || !got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("entry %d: got %+v, want %+v", i, got, *want)
		}
	}
	var none raft.Log
	if err := l.GetLog(last+1, &none); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("get past the end: %v", err)
	}
	if first > 1 {
		if err := l.GetLog(first-1, &none); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("get below the start: %v", err)
		}
	}
}

func TestSegLog_StoreGetReopen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpenSegLog(t, dir, 300) // a few entries per segment
	model := map[uint64]*raft.Log{}
	checkLog(t, l, model, 0, 0)
	batches := [][]*raft.Log{entries(1, 1, 1), entries(2, 9, 1)}
	for _, e := range entries(10, 40, 2) { // one per append: a segment rolls between appends
		batches = append(batches, []*raft.Log{e})
	}
	for _, batch := range batches {
		if err := l.StoreLogs(batch); err != nil {
			t.Fatal(err)
		}
		for _, e := range batch {
			model[e.Index] = e
		}
	}
	checkLog(t, l, model, 1, 40)
	if len(l.segs) < 3 {
		t.Fatalf("%d segments: the log did not roll", len(l.segs))
	}
	for _, bad := range [][]*raft.Log{entries(42, 42, 2), entries(40, 41, 2), {testEntry(41, 2), testEntry(43, 2)}} {
		if err := l.StoreLogs(bad); !errors.Is(err, errNotContiguous) {
			t.Fatalf("append %d..: %v, want errNotContiguous", bad[0].Index, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkLog(t, mustOpenSegLog(t, dir, 300), model, 1, 40)
}

func TestSegLog_DeleteRange(t *testing.T) {
	dir := t.TempDir()
	l := mustOpenSegLog(t, dir, 300)
	model := map[uint64]*raft.Log{}
	store := func(from, to, term uint64) {
		t.Helper()
		for _, e := range entries(from, to, term) {
			if err := l.StoreLogs([]*raft.Log{e}); err != nil {
				t.Fatal(err)
			}
			model[e.Index] = e
		}
	}
	reopen := func() {
		t.Helper()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = mustOpenSegLog(t, dir, 300)
	}
	store(1, 50, 1)
	segs := len(l.segs)

	// Compaction: a prefix. Whole segments go; after a restart the log may
	// start lower (the rest of a kept segment) but never higher.
	if err := l.DeleteRange(1, 20); err != nil {
		t.Fatal(err)
	}
	checkLog(t, l, model, 21, 50)
	if len(l.segs) >= segs {
		t.Fatalf("prefix delete kept all %d segments", segs)
	}
	reopen()
	if f, _ := l.FirstIndex(); f > 21 || f < 1 {
		t.Fatalf("first index %d after reopen, want at most 21", f)
	}
	if err := l.DeleteRange(1, 20); err != nil {
		t.Fatal(err)
	}

	// Conflict: a suffix, then the leader's entries in a new term.
	if err := l.DeleteRange(33, 50); err != nil {
		t.Fatal(err)
	}
	checkLog(t, l, model, 21, 32)
	store(33, 45, 3)
	checkLog(t, l, model, 21, 45)
	reopen()
	if err := l.DeleteRange(1, 20); err != nil {
		t.Fatal(err)
	}
	checkLog(t, l, model, 21, 45)

	// A middle range is not something Raft asks for.
	if err := l.DeleteRange(25, 30); err == nil {
		t.Fatal("middle delete accepted")
	}

	// Everything (after a snapshot install), then a fresh start further on.
	if err := l.DeleteRange(21, 45); err != nil {
		t.Fatal(err)
	}
	checkLog(t, l, model, 0, 0)
	store(1000, 1010, 4)
	checkLog(t, l, model, 1000, 1010)
	reopen()
	checkLog(t, l, model, 1000, 1010)
}

// A crash can tear only the last batch: whatever follows the last intact
// record of the last segment is cut off at open, and appends go on from
// there. Damage anywhere else is corruption.
func TestSegLog_RecoversTornTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
		last   uint64
	}{
		{"half a header", func(t *testing.T, p string, _ int64) { appendFile(t, p, []byte{9, 0, 0}) }, 12},
		{"a header without its body", func(t *testing.T, p string, _ int64) {
			appendFile(t, p, appendRecord(nil, testEntry(13, 1))[:recHeaderLen+5])
		}, 12},
		{"zeros (preallocated space)", func(t *testing.T, p string, _ int64) { appendFile(t, p, make([]byte, 64)) }, 12},
		{"a garbled last record", func(t *testing.T, p string, size int64) { flipByte(t, p, size-3) }, 11},
		{"a record of the wrong index", func(t *testing.T, p string, _ int64) { appendFile(t, p, appendRecord(nil, testEntry(14, 1))) }, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpenSegLog(t, dir, 300)
			model := map[uint64]*raft.Log{}
			for _, e := range entries(1, 12, 1) {
				model[e.Index] = e
				if err := l.StoreLogs([]*raft.Log{e}); err != nil {
					t.Fatal(err)
				}
			}
			tail := l.segs[len(l.segs)-1]
			path, size := tail.path, tail.size
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, path, size)
			l = mustOpenSegLog(t, dir, 300)
			checkLog(t, l, model, 1, tc.last)
			next := entries(tc.last+1, tc.last+3, 2)
			if err := l.StoreLogs(next); err != nil {
				t.Fatal(err)
			}
			for _, e := range next {
				model[e.Index] = e
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			checkLog(t, mustOpenSegLog(t, dir, 300), model, 1, tc.last+3)
		})
	}

	t.Run("damage before the last segment", func(t *testing.T) {
		dir := t.TempDir()
		l := mustOpenSegLog(t, dir, 300)
		storeEach(t, l, entries(1, 30, 1))
		first := l.segs[0]
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		flipByte(t, first.path, first.offsets[1]+recHeaderLen+2)
		if _, err := openSegLog(dir, 300); !errors.Is(err, errCorruptLog) {
			t.Fatalf("open: %v, want errCorruptLog", err)
		}
	})
	t.Run("a missing segment", func(t *testing.T) {
		dir := t.TempDir()
		l := mustOpenSegLog(t, dir, 300)
		storeEach(t, l, entries(1, 30, 1))
		if len(l.segs) < 3 {
			t.Fatalf("%d segments", len(l.segs))
		}
		middle := l.segs[1].path
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(middle); err != nil {
			t.Fatal(err)
		}
		if _, err := openSegLog(dir, 300); !errors.Is(err, errCorruptLog) {
			t.Fatalf("open: %v, want errCorruptLog", err)
		}
	})
}

// A random run of appends, compactions, conflicts, wipes and reopens
// against an in-memory model.
func TestSegLog_RandomOpsMatchModel(t *testing.T) {
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	l := mustOpenSegLog(t, dir, 512)
	model := map[uint64]*raft.Log{}
	var first, last, term uint64 = 0, 0, 1
	for step := range 400 {
		switch op := rng.IntN(10); {
		case op < 5 || last == 0: // append
			from := last + 1
			if last == 0 {
				from = 1 + rng.Uint64N(100)
			}
			es := entries(from, from+rng.Uint64N(8), term)
			if err := l.StoreLogs(es); err != nil {
				t.Fatalf("step %d: append: %v", step, err)
			}
			for _, e := range es {
				model[e.Index] = e
			}
			if first == 0 {
				first = from
			}
			last = es[len(es)-1].Index
		case op < 7: // compaction
			hi := first + rng.Uint64N(last-first+1)
			if hi == last {
				hi-- // keep some
			}
			if hi < first {
				continue
			}
			if err := l.DeleteRange(first, hi); err != nil {
				t.Fatalf("step %d: delete prefix: %v", step, err)
			}
			first = hi + 1
		case op < 9: // conflict
			lo := first + 1 + rng.Uint64N(last-first+1)
			if lo > last {
				continue
			}
			if err := l.DeleteRange(lo, last); err != nil {
				t.Fatalf("step %d: delete suffix: %v", step, err)
			}
			last = lo - 1
			term++
		default: // restart, now and then after a wipe
			if rng.IntN(4) == 0 {
				if err := l.DeleteRange(first, last); err != nil {
					t.Fatalf("step %d: delete all: %v", step, err)
				}
				first, last = 0, 0
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpenSegLog(t, dir, 512)
			if f, _ := l.FirstIndex(); f != 0 && f < first {
				// compacted entries may come back with their segment;
				// they are still the same committed entries
				first = f
			}
		}
		checkLog(t, l, model, first, last)
	}
}

// storeEach appends es one entry per append, so the log rolls segments
// between them.
func storeEach(t *testing.T, l *segLog, es []*raft.Log) {
	t.Helper()
	for _, e := range es {
		if err := l.StoreLogs([]*raft.Log{e}); err != nil {
			t.Fatal(err)
		}
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecodeRecord: no input makes the decoder panic, and what it accepts
// re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, testEntry(3, 1)))
	f.Add(appendRecord(nil, &raft.Log{Index: 1}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < recHeaderLen {
			return
		}
		n, ok := recordLen(b)
		if !ok || n != len(b)-recHeaderLen {
			return
		}
		var l raft.Log
		if err := decodeRecord(b[:recHeaderLen], b[recHeaderLen:], &l); err != nil {
			return
		}
		if again := appendRecord(nil, &l); !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v re-encodes differently", l)
		}
	})
}

// The segment log and the stable file behind openLogStore; the kind a data
// dir was written with is kept, and the other one is refused.
func TestOpenLogStore_Kinds(t *testing.T) {
	for _, tc := range []struct{ name, first, reopen, wantKind string }{
		{"new dir gets segments", LogStoreAuto, LogStoreAuto, LogStoreSegments},
		{"boltdb dir keeps boltdb", LogStoreBoltDB, LogStoreAuto, LogStoreBoltDB},
		{"segments asked for", LogStoreSegments, LogStoreSegments, LogStoreSegments},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, kind, err := openLogStore(dir, tc.first)
			if err != nil || kind != tc.wantKind {
				t.Fatalf("open: kind %q, %v", kind, err)
			}
			if err := s.StoreLogs(entries(1, 3, 1)); err != nil {
				t.Fatal(err)
			}
			if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, kind, err = openLogStore(dir, tc.reopen)
			if err != nil || kind != tc.wantKind {
				t.Fatalf("reopen: kind %q, %v", kind, err)
			}
			defer s.Close()
			var l raft.Log
			if err := s.GetLog(3, &l); err != nil || l.Index != 3 {
				t.Fatalf("entry 3 after reopen: %+v, %v", l, err)
			}
			if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
				t.Fatalf("term after reopen: %d, %v", v, err)
			}
			other := LogStoreBoltDB
			if kind == LogStoreBoltDB {
				other = LogStoreSegments
			}
			if _, _, err := openLogStore(dir, other); !errors.Is(err, ErrLogStoreMismatch) {
				t.Fatalf("%s on a %s dir: %v", other, kind, err)
			}
		})
	}
	t.Run("both kinds is refused", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "raft.db"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, "log"), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, _, err := openLogStore(dir, LogStoreAuto); !errors.Is(err, ErrLogStoreMismatch) {
			t.Fatalf("both: %v", err)
		}
	})
	t.Run("unknown kind", func(t *testing.T) {
		if _, _, err := openLogStore(t.TempDir(), "leveldb"); err == nil {
			t.Fatal("unknown kind accepted")
		}
	})
}

// TestSegLog_Metrics: every append and every sync is counted, and the
// synced bytes are the records' bytes, so appends per sync (group commit)
// can be read off a node's metrics.
func TestSegLog_Metrics(t *testing.T) {
	l := mustOpenSegLog(t, t.TempDir(), 1<<20)
	reg := prometheus.NewRegistry()
	l.setMetrics(metrics.NewCluster(reg))
	if err := l.StoreLogs(entries(1, 3, 1)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	for _, b := range [][]*raft.Log{entries(4, 4, 1), entries(5, 6, 1)} {
		if err := l.StoreLogsAsync(b, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var want int64
	l.mu.RLock()
	for _, s := range l.segs {
		want += s.size
	}
	l.mu.RUnlock()
	count := func(name string) float64 { return gaugeValue(t, reg, "flotilla_cluster_"+name) }
	if got := count("log_appends_total"); got != 3 {
		t.Errorf("appends = %v, want 3", got)
	}
	// The two async appends may share a sync or not.
	if got := count("log_syncs_total"); got < 2 || got > 3 {
		t.Errorf("syncs = %v, want 2 or 3", got)
	}
	if got := count("log_synced_bytes_total"); got != float64(want) {
		t.Errorf("synced bytes = %v, want %d (the segment's records)", got, want)
	}
}
