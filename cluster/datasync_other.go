//go:build !linux

package cluster

import "os"

// datasync flushes f (fsync where fdatasync is not available).
func datasync(f *os.File) error { return f.Sync() }

// writeOut writes f's dirty pages to the disk (all of them: without
// sync_file_range the offset cannot be used).
func writeOut(f *os.File, _ int64) error { return datasync(f) }

// dropCache does nothing where posix_fadvise is not available: the pages
// stay cached until the kernel needs them.
func dropCache(*os.File, int64, int64) error { return nil }
