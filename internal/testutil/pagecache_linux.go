package testutil

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PageSize is the size of the pages ResidentPages reports on.
var PageSize = int64(os.Getpagesize())

// ResidentPages reports, for each page of path's first n bytes, whether it
// is in the page cache (mincore(2) on a fresh mapping, which itself faults
// nothing in).
func ResidentPages(t testing.TB, path string, n int64) []bool {
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
	vec := make([]byte, (n+PageSize-1)/PageSize)
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

// CacheTestDir returns a temp dir whose files have a page cache to drop,
// and skips the test on tmpfs, where a file's pages are its storage and
// posix_fadvise leaves them.
func CacheTestDir(t testing.TB) string {
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
