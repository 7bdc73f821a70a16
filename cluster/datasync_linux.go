package cluster

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// datasync flushes f's data and the metadata needed to read it back (its
// size), which is what an append needs, without the inode times.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// writeOut writes f's dirty pages from offset off to its end to the disk
// and waits for them, without the metadata commit an fdatasync forces:
// snapshot pacing wants the data off the page cache, not durable (the
// sink's final fsync does that).
func writeOut(f *os.File, off int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, 0,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
}

// dropCache asks the kernel to drop f's clean pages in [off, off+n) from
// the page cache (dirty ones stay).
func dropCache(f *os.File, off, n int64) error {
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
