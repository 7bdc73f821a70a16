package fsutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// DropCache asks the kernel to drop f's clean pages in [off, off+n) from
// the page cache; n = 0 means to the end of the file. Dirty pages in the
// range are not dropped: the call starts their write-back (without waiting
// for it), so a later call drops them. Pages mapped into a process stay.
func DropCache(f *os.File, off, n int64) error {
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
