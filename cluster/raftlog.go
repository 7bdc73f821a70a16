package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/flotilla/flotilla/internal/fsutil"
)

// segLog is Raft's log as append-only segment files, raft/log/<first
// index>.seg, each a run of records (raftlog_codec.go). An append writes
// the batch's records at the end of the last segment and fdatasyncs it:
// one sync per batch, where raft-boltdb's B+tree commit costs two, and
// both the leader's and each follower's append are on the path of every
// acknowledgement.
//
// Crash safety: StoreLogs returns only after its records are synced, so a
// crash can only tear the last, unacknowledged batch; opening truncates a
// torn or garbled tail of the last segment at its first bad record. Files
// are created and removed with a directory sync before anything depends
// on them, and a suffix delete (Raft dropping conflicting entries) removes
// later segments before truncating, so the segments left after any crash
// are one contiguous run. A bad record anywhere else is corruption and
// refuses to open.
//
// Indexes must be contiguous (IsMonotonic): Raft then deletes the whole
// log rather than leaving a gap after installing a snapshot.
type segLog struct {
	dir     string
	segSize int64

	mu     sync.RWMutex
	segs   []*segment // by first index; appends go to the last
	first  uint64     // 0: empty
	last   uint64
	failed error // a failed sync: nothing is trusted any more
	buf    []byte
}

// segment is one file of the log.
type segment struct {
	first   uint64
	path    string
	f       *os.File
	offsets []int64 // offsets[i] is where the record of index first+i starts
	size    int64   // end of its last intact record
}

func (s *segment) lastIndex() uint64 { return s.first + uint64(len(s.offsets)) - 1 }

const (
	segSuffix          = ".seg"
	defaultSegmentSize = 64 << 20
)

var (
	_ raft.LogStore          = (*segLog)(nil)
	_ raft.MonotonicLogStore = (*segLog)(nil)
)

// openSegLog opens (or creates) the log in dir, recovering from a crash.
func openSegLog(dir string, segSize int64) (*segLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	l := &segLog{dir: dir, segSize: segSize}
	firsts, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	for i, first := range firsts {
		lastSeg := i == len(firsts)-1
		if n := len(l.segs); n > 0 && l.segs[n-1].lastIndex()+1 != first {
			err := fmt.Errorf("raft log: segment %d does not follow %d (ends at %d): %w",
				first, l.segs[n-1].first, l.segs[n-1].lastIndex(), errCorruptLog)
			_ = l.closeFiles()
			return nil, err
		}
		s, err := openSegment(dir, first, lastSeg)
		if err != nil {
			_ = l.closeFiles()
			return nil, err
		}
		if len(s.offsets) == 0 && !lastSeg {
			_ = l.closeFiles()
			_ = s.f.Close()
			return nil, fmt.Errorf("raft log: segment %s is empty but not the last: %w", s.path, errCorruptLog)
		}
		l.segs = append(l.segs, s)
	}
	l.resetBounds()
	return l, nil
}

// errCorruptLog: the log's files are damaged beyond a torn last write.
var errCorruptLog = errors.New("corrupt raft log")

func segmentPath(dir string, first uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", first, segSuffix))
}

func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	var firsts []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || e.IsDir() {
			continue
		}
		first, err := strconv.ParseUint(name, 10, 64)
		if err != nil || first == 0 {
			return nil, fmt.Errorf("raft log: unexpected file %s: %w", e.Name(), errCorruptLog)
		}
		firsts = append(firsts, first)
	}
	slices.Sort(firsts)
	return firsts, nil
}

// openSegment reads a segment's records. In the last segment, a bad
// record ends the log there: the file is truncated to the records before
// it (a write torn by a crash). Elsewhere it is corruption.
func openSegment(dir string, first uint64, last bool) (*segment, error) {
	path := segmentPath(dir, first)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	s := &segment{first: first, path: path, f: f}
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, 1<<62), 1<<20)
	var hdr [recHeaderLen]byte
	var body []byte
	var rec raft.Log
	for {
		bad := func() error {
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				return err
			}
			n, ok := recordLen(hdr[:])
			if !ok {
				return errBadRecord
			}
			body = slices.Grow(body[:0], n)[:n]
			if _, err := io.ReadFull(r, body); err != nil {
				return err
			}
			if err := decodeRecord(hdr[:], body, &rec); err != nil {
				return err
			}
			if rec.Index != first+uint64(len(s.offsets)) {
				return fmt.Errorf("record index %d, want %d: %w", rec.Index, first+uint64(len(s.offsets)), errBadRecord)
			}
			return nil
		}()
		if bad == io.EOF {
			break // a clean end
		}
		if bad != nil {
			if !last {
				_ = f.Close()
				return nil, fmt.Errorf("raft log: %s at offset %d: %v: %w", path, s.size, bad, errCorruptLog)
			}
			// a torn tail: drop it for good, so that new records follow
			// the last intact one
			if err := f.Truncate(s.size); err != nil {
				_ = f.Close()
				return nil, fmt.Errorf("raft log: truncate torn tail of %s: %w", path, err)
			}
			if err := datasync(f); err != nil {
				_ = f.Close()
				return nil, fmt.Errorf("raft log: sync %s: %w", path, err)
			}
			break
		}
		s.offsets = append(s.offsets, s.size)
		s.size += int64(recHeaderLen + len(body))
	}
	return s, nil
}

func (l *segLog) resetBounds() {
	l.first, l.last = 0, 0
	for _, s := range l.segs {
		if len(s.offsets) == 0 {
			continue
		}
		if l.first == 0 {
			l.first = s.first
		}
		l.last = s.lastIndex()
	}
}

// FirstIndex implements raft.LogStore.
func (l *segLog) FirstIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.first, l.failed
}

// LastIndex implements raft.LogStore.
func (l *segLog) LastIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.last, l.failed
}

// IsMonotonic implements raft.MonotonicLogStore.
func (l *segLog) IsMonotonic() bool { return true }

// GetLog implements raft.LogStore.
func (l *segLog) GetLog(index uint64, out *raft.Log) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.failed != nil {
		return l.failed
	}
	if l.first == 0 || index < l.first || index > l.last {
		return raft.ErrLogNotFound
	}
	i, _ := slices.BinarySearchFunc(l.segs, index, func(s *segment, idx uint64) int {
		if s.first > idx {
			return 1
		}
		return -1
	})
	s := l.segs[i-1]
	k := index - s.first
	end := s.size
	if int(k)+1 < len(s.offsets) {
		end = s.offsets[k+1]
	}
	buf := make([]byte, end-s.offsets[k])
	if _, err := s.f.ReadAt(buf, s.offsets[k]); err != nil {
		return fmt.Errorf("raft log: read index %d: %w", index, err)
	}
	if err := decodeRecord(buf[:recHeaderLen], buf[recHeaderLen:], out); err != nil || out.Index != index {
		return fmt.Errorf("raft log: index %d in %s: %w", index, s.path, errCorruptLog)
	}
	return nil
}

// StoreLog implements raft.LogStore.
func (l *segLog) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

// StoreLogs implements raft.LogStore: the records are durable when it
// returns.
func (l *segLog) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return l.failed
	}
	next := logs[0].Index
	if l.last != 0 && next != l.last+1 {
		return fmt.Errorf("raft log: append of index %d after %d: %w", next, l.last, errNotContiguous)
	}
	for i, lg := range logs {
		if lg.Index != next+uint64(i) {
			return fmt.Errorf("raft log: batch index %d at position %d after %d: %w", lg.Index, i, next, errNotContiguous)
		}
	}
	s, err := l.activeSegment(next)
	if err != nil {
		return err
	}
	l.buf = l.buf[:0]
	offsets := make([]int64, len(logs))
	for i, lg := range logs {
		offsets[i] = s.size + int64(len(l.buf))
		l.buf = appendRecord(l.buf, lg)
	}
	if _, err := s.f.WriteAt(l.buf, s.size); err != nil {
		// nothing counted yet: the next append overwrites whatever
		// part of this one reached the file
		return fmt.Errorf("raft log: write: %w", err)
	}
	if err := datasync(s.f); err != nil {
		// After a failed fsync the kernel may have dropped the dirty
		// pages: what the file holds is unknown, so the log stops.
		l.failed = fmt.Errorf("raft log: sync %s: %w", s.path, err)
		return l.failed
	}
	s.offsets = append(s.offsets, offsets...)
	s.size += int64(len(l.buf))
	if l.first == 0 {
		l.first = next
	}
	l.last = logs[len(logs)-1].Index
	if cap(l.buf) > 4*defaultSegmentSize {
		l.buf = nil // do not keep a huge batch's buffer
	}
	return nil
}

// errNotContiguous: an append would leave a gap or overlap.
var errNotContiguous = errors.New("raft log indexes not contiguous")

// activeSegment returns the segment to append index next to, starting a
// new one when there is none or the last one is full.
func (l *segLog) activeSegment(next uint64) (*segment, error) {
	if n := len(l.segs); n > 0 {
		s := l.segs[n-1]
		switch {
		case len(s.offsets) == 0 && s.first == next:
			return s, nil
		case len(s.offsets) == 0:
			// an empty segment named for another index (the log was
			// emptied): replace it
			if err := l.removeSegments(n - 1); err != nil {
				return nil, err
			}
		case s.size < l.segSize:
			return s, nil
		}
	}
	path := segmentPath(l.dir, next)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("raft log: new segment: %w", err)
	}
	if err := fsutil.SyncDir(l.dir); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("raft log: %w", err)
	}
	s := &segment{first: next, path: path, f: f}
	l.segs = append(l.segs, s)
	return s, nil
}

// DeleteRange implements raft.LogStore. Raft deletes a prefix (compaction
// after a snapshot), a suffix (entries that conflict with the leader's),
// or everything (after installing a snapshot).
func (l *segLog) DeleteRange(lo, hi uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return l.failed
	}
	if l.first == 0 || hi < l.first || lo > l.last {
		return nil
	}
	lo, hi = max(lo, l.first), min(hi, l.last)
	switch {
	case lo == l.first && hi == l.last:
		if err := l.removeSegments(0); err != nil {
			return err
		}
		l.first, l.last = 0, 0
	case lo == l.first:
		// whole segments up to hi go; the rest of the one holding hi
		// stays on disk but is no longer part of the log
		n := 0
		for n < len(l.segs)-1 && l.segs[n].lastIndex() <= hi {
			n++
		}
		if n > 0 {
			gone := l.segs[:n]
			l.segs = slices.Clone(l.segs[n:])
			for _, s := range gone {
				_ = s.f.Close()
				if err := os.Remove(s.path); err != nil {
					return fmt.Errorf("raft log: remove %s: %w", s.path, err)
				}
			}
			if err := fsutil.SyncDir(l.dir); err != nil {
				return fmt.Errorf("raft log: %w", err)
			}
		}
		l.first = hi + 1
	case hi == l.last:
		i := len(l.segs) - 1
		for l.segs[i].first > lo {
			i--
		}
		// later segments first, so a crash leaves a contiguous log
		if err := l.removeSegments(i + 1); err != nil {
			return err
		}
		s := l.segs[i]
		k := lo - s.first
		if err := s.f.Truncate(s.offsets[k]); err != nil {
			return fmt.Errorf("raft log: truncate %s: %w", s.path, err)
		}
		if err := datasync(s.f); err != nil {
			l.failed = fmt.Errorf("raft log: sync %s: %w", s.path, err)
			return l.failed
		}
		s.size, s.offsets = s.offsets[k], s.offsets[:k]
		l.last = lo - 1 // not below first: that is the delete-everything case
	default:
		return fmt.Errorf("raft log: delete of %d..%d inside %d..%d is not supported", lo, hi, l.first, l.last)
	}
	return nil
}

// removeSegments closes and removes segs[from:], last first, then syncs
// the directory.
func (l *segLog) removeSegments(from int) error {
	for i := len(l.segs) - 1; i >= from; i-- {
		s := l.segs[i]
		_ = s.f.Close()
		if err := os.Remove(s.path); err != nil {
			l.segs = l.segs[:i+1]
			return fmt.Errorf("raft log: remove %s: %w", s.path, err)
		}
		l.segs = l.segs[:i]
	}
	if err := fsutil.SyncDir(l.dir); err != nil {
		return fmt.Errorf("raft log: %w", err)
	}
	return nil
}

// Close closes the segment files.
func (l *segLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeFiles()
}

func (l *segLog) closeFiles() error {
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, s.f.Close())
	}
	l.segs = nil
	return errors.Join(errs...)
}
