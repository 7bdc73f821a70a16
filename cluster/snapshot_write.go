package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
)

// DefaultSnapshotSyncBytes is how much of a snapshot being written may sit
// in the page cache before the writer waits for it to reach the disk, and
// DefaultSnapshotWriteRate how fast it is written at most.
//
// Why pace at all: a snapshot is a copy of the whole state file, gigabytes
// for a big stream, and raft's FileSnapshotSink only fsyncs it at the end.
// Until then the kernel holds it as dirty pages, and on ext4 (data=ordered)
// the next fdatasync of the Raft log waits while they are written out: the
// leader's log append, and with it every acknowledgement, stalled for
// seconds behind each snapshot (docs/benchmarks.md, growth run). Written in
// steps that each reach the disk before the next, at most one step is ever
// queued ahead of a log sync; and at a bounded rate, the snapshot leaves
// the disk to the log most of the time. BenchmarkSnapshotPacing (a 1 GiB
// snapshot next to a goroutine appending and fdatasyncing 4 KiB records):
// unpaced, one log sync took 0.6-1.1 s (the sink's final fsync); in 1 MiB
// steps at full speed the log's median sync went from 0.3 to 2.3 ms
// (the disk was always busy with the snapshot); in 1 MiB steps at
// 128 MiB/s the median stayed at 0.26 ms, p99 3.4 ms, max 28 ms, and the
// snapshot took 8 s instead of 3.
const (
	DefaultSnapshotSyncBytes = 1 << 20
	DefaultSnapshotWriteRate = 128 << 20
)

// pacedSink is the io.Writer a snapshot is written through: it writes to
// raft's sink and, every step bytes, waits for what it wrote so far to be
// written out (writeOut), through a second handle on the sink's file.
type pacedSink struct {
	w       io.Writer
	f       *os.File // nil: not paced
	step    int64
	rate    int64 // bytes per second; 0: as fast as the disk takes it
	stop    <-chan struct{}
	start   time.Time
	written int64
	synced  int64 // offset up to which writeOut was called
	dropped int64 // offset below which the pages were dropped from the cache
	steps   int   // writeOut calls (tests)
}

// openPacedSink wraps sink; a paced write gives up with ErrShutdown once
// stop is closed (a slow snapshot of a big state would otherwise hold up
// the node's shutdown for as long as it takes). Pacing needs the file behind raft's
// FileSnapshotStore sink, which keeps its state in
// <dir>/snapshots/<id>.tmp/state.bin while it is written (raft's layout,
// pinned by TestPacedSink_FindsRaftsFile). Any other sink, a step <= 0 or
// a file that cannot be opened gives an unpaced writer; the error says why
// for the last case.
func openPacedSink(sink raft.SnapshotSink, dir string, step, rate int64, stop <-chan struct{}) (*pacedSink, error) {
	p := &pacedSink{w: sink, step: step, rate: rate, stop: stop, start: time.Now()}
	if _, ok := sink.(*raft.FileSnapshotSink); !ok || dir == "" || step <= 0 {
		return p, nil
	}
	f, err := os.OpenFile(filepath.Join(dir, "snapshots", sink.ID()+".tmp", "state.bin"), os.O_WRONLY, 0)
	if err != nil {
		return p, fmt.Errorf("open snapshot file for pacing: %w", err)
	}
	p.f = f
	return p, nil
}

func (p *pacedSink) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.written += int64(n)
	if err == nil && p.f != nil && p.written-p.synced >= p.step {
		// The sink buffers a few KiB; those go with the next step or the
		// sink's final fsync.
		if err = writeOut(p.f, p.synced); err != nil {
			err = fmt.Errorf("write out snapshot: %w", err)
		} else {
			p.dropWritten()
		}
		p.synced = p.written
		p.steps++
		if err == nil {
			err = p.keepRate()
		}
	}
	return n, err
}

// dropWritten drops the snapshot's pages up to the previous step from
// the page cache: they are on the disk now (clean), and the file is read
// back only when a follower needs the snapshot. As with the Raft log
// (dropSynced in raftlog.go), a gigabyte snapshot then neither takes new
// pages for all of it nor pushes the state file out of the cache. The
// step being written out stays: part of it may still be in the sink's
// buffer.
func (p *pacedSink) dropWritten() { dropClean(p.f, &p.dropped, p.synced) }

// keepRate waits until the bytes written so far are within the rate.
func (p *pacedSink) keepRate() error {
	wait := time.Duration(0)
	if p.rate > 0 {
		wait = time.Duration(float64(p.written)/float64(p.rate)*float64(time.Second)) - time.Since(p.start)
	}
	if wait <= 0 {
		select {
		case <-p.stop:
			return ErrShutdown
		default:
			return nil
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-p.stop:
		return ErrShutdown
	case <-t.C:
		return nil
	}
}

// close closes the second handle (the sink itself is raft's to close).
func (p *pacedSink) close() error {
	if p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("close snapshot pacing handle: %w", err)
	}
	return nil
}
