package cluster

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"
)

// residentPages reports, for each page of path's first n bytes, whether
// it is in the page cache.
func residentPages(t *testing.T, path string, n int64) []bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (n+pageSize-1)/pageSize)
	// x/sys/unix has no wrapper for mincore(2)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	out := make([]bool, len(vec))
	for i, v := range vec {
		out[i] = v&1 != 0
	}
	return out
}

// cacheTestDir returns a temp dir whose files have a page cache to drop:
// on tmpfs the file's pages are its storage, and posix_fadvise leaves them.
func cacheTestDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		t.Skipf("%s is on tmpfs: no page cache to drop (set TMPDIR to a disk-backed directory)", dir)
	}
	return dir
}

// Synced records leave the page cache, except the last partial page that
// the next append writes into; reads still return them (from the disk).
// The folio holding the last page may keep up to folioMax: the test checks
// the pages below the folioMax boundary under the end.
func TestSegLog_DropsSyncedPagesFromCache(t *testing.T) {
	l := mustOpenSegLog(t, cacheTestDir(t), 16<<20)
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
	res := residentPages(t, s.path, size)
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
	cacheTestDir(t) // skips on tmpfs, where newFileSink's temp dir is too
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
	res := residentPages(t, path, 6*step)
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
