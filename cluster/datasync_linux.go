package cluster

import (
	"os"
	"syscall"
)

// datasync flushes f's data and the metadata needed to read it back (its
// size), which is what an append needs, without the inode times.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
