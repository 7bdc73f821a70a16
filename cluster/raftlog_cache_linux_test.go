package cluster

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/flotilla/flotilla/internal/testutil"
)

// Synced records leave the page cache, except the last partial page that
// the next append writes into; reads still return them (from the disk).
// The folio holding the last page may keep up to folioMax: the test checks
// the pages below the folioMax boundary under the end.
func TestSegLog_DropsSyncedPagesFromCache(t *testing.T) {
	l := mustOpenSegLog(t, testutil.CacheTestDir(t), 16<<20)
	var want []*raft.Log
	for i := uint64(1); i <= 160; i++ {
		e := &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, 50_000+int(i))}
		want = append(want, e)
		if err := l.StoreLogs([]*raft.Log{e}); err != nil {
			t.Fatal(err)
		}
	}
	l.mu.RLock()
	s := l.segs[0]
	size := s.size
	l.mu.RUnlock()
	if size%pageSize == 0 {
		t.Fatalf("size %d is page-aligned: the test wants a partial last page", size)
	}
	res := testutil.ResidentPages(t, s.path, size)
	below := int((size &^ (folioMax - 1)) / pageSize)
	if below < (4<<20)/int(pageSize) {
		t.Fatalf("only %d pages below the last 2 MiB boundary", below)
	}
	var cached int
	for _, r := range res[:below] {
		if r {
			cached++
		}
	}
	if cached > 0 {
		t.Errorf("%d of the %d synced pages below offset %d are still in the page cache", cached, below, below*int(pageSize))
	}
	if !res[len(res)-1] {
		t.Errorf("the last partial page was dropped: the next append would read it back from the disk")
	}
	for _, e := range want {
		var got raft.Log
		if err := l.GetLog(e.Index, &got); err != nil || !bytes.Equal(got.Data, e.Data) {
			t.Fatalf("entry %d after the drop: %v", e.Index, err)
		}
	}
}

// A paced snapshot's written-out steps leave the page cache too, all but
// the last step (and the folio reaching into it).
func TestPacedSink_DropsWrittenPages(t *testing.T) {
	testutil.CacheTestDir(t) // skips on tmpfs, where newFileSink's temp dir is too
	dir, _, sink := newFileSink(t)
	const step = 1 << 20
	p, err := openPacedSink(sink, dir, step, 0, nil)
	if err != nil || p.f == nil {
		t.Fatalf("open: %v", err)
	}
	defer p.close()
	defer sink.Cancel()
	chunk := bytes.Repeat([]byte{7}, 64<<10)
	for range 8 * step / len(chunk) {
		if _, err := p.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "snapshots", sink.ID()+".tmp", "state.bin")
	res := testutil.ResidentPages(t, path, 6*step)
	below := int((p.dropped - folioMax) / pageSize)
	if below < (4<<20)/int(pageSize) {
		t.Fatalf("only %d pages dropped for sure (dropped up to %d)", below, p.dropped)
	}
	var cached int
	for _, r := range res[:below] {
		if r {
			cached++
		}
	}
	if cached > 0 {
		t.Errorf("%d of the first %d written-out pages are still in the page cache", cached, below)
	}
}
