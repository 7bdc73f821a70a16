package bbolt

import (
	"io"
	"unsafe"

	"golang.org/x/sys/unix"

	"go.etcd.io/bbolt/internal/common"
)

// maxIOV is Linux's IOV_MAX: the most buffers one pwritev takes.
const maxIOV = 1024

// writePages writes the dirty pages, sorted by id, with one pwritev per
// run of pages that are adjacent in the file (Flotilla). A commit that
// appends many pages, as a message log's does, allocates them at the end
// of the file one after another; upstream wrote each with its own pwrite,
// a system call per page that cost several times the copy it made.
func (tx *Tx) writePages(pages common.Pages) error {
	fd := int(tx.db.file.Fd())
	pageSize := int64(tx.db.pageSize)
	iov := make([][]byte, 0, min(len(pages), maxIOV))
	var at, end int64 // the file range iov covers
	for _, p := range pages {
		size := (int64(p.Overflow()) + 1) * pageSize
		offset := int64(p.Id()) * pageSize
		if len(iov) > 0 && (offset != end || len(iov) == maxIOV) {
			if err := tx.pwritev(fd, iov, at); err != nil {
				return err
			}
			iov = iov[:0]
		}
		if len(iov) == 0 {
			at = offset
		}
		iov = append(iov, common.UnsafeByteSlice(unsafe.Pointer(p), 0, 0, int(size)))
		end = offset + size
	}
	if len(iov) == 0 {
		return nil
	}
	return tx.pwritev(fd, iov, at)
}

// pwritev writes iov at offset, resuming after short writes (a single call
// writes at most about 2 GiB). It consumes iov.
func (tx *Tx) pwritev(fd int, iov [][]byte, offset int64) error {
	for len(iov) > 0 {
		n, err := unix.Pwritev(fd, iov, offset)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		tx.stats.IncWrite(1)
		offset += int64(n)
		for n > 0 {
			if n < len(iov[0]) {
				iov[0] = iov[0][n:]
				break
			}
			n -= len(iov[0])
			iov = iov[1:]
		}
	}
	return nil
}
