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
	"time"

	"github.com/hashicorp/raft"

	"github.com/flotilla/flotilla/internal/fsutil"
	"github.com/flotilla/flotilla/metrics"
)

// segLog is Raft's log as append-only segment files, raft/log/<first
// index>.seg, each a run of records (raftlog_codec.go). An append writes
// the batch's records at the end of the last segment and fdatasyncs it:
// one sync per batch, where raft-boltdb's B+tree commit costs two, and
// both the leader's and each follower's append are on the path of every
// acknowledgement.
//
// Raft appends with StoreLogsAsync, which returns once written; syncLoop
// syncs everything written so far and then calls back. The leader sends
// the entries to the followers meanwhile and counts itself towards their
// quorum only after that sync; a follower takes the next AppendEntries
// meanwhile and answers each only after its sync
// (third_party/hashicorp/raft, FLOTILLA.md). So a committed entry is
// still on a quorum's disks, the leader's sync is no longer in series
// with the followers', and a follower's one sync answers every request
// that arrived during the previous one. StoreLogs (used by log stores'
// other callers) returns once synced.
//
// Crash safety: a crash can only tear the unsynced tail of the last
// segment (a segment is synced before the next one is started), which
// holds only entries not yet committed with this node's copy; opening
// truncates a torn or garbled tail of the last segment at its first bad
// record. Files are created and removed with a directory sync before
// anything depends on them, and a suffix delete (Raft dropping
// conflicting entries) removes later segments before truncating, so the
// segments left after any crash are one contiguous run. A bad record
// anywhere else is corruption and refuses to open.
//
// Indexes must be contiguous (IsMonotonic): Raft then deletes the whole
// log rather than leaving a gap after installing a snapshot.
type segLog struct {
	dir     string
	segSize int64

	// syncMu is held while syncing (and by anything that closes or
	// truncates a segment, so no sync runs on it meanwhile); it is taken
	// before mu, and mu is not held during a sync.
	syncMu sync.Mutex

	mu       sync.RWMutex
	segs     []*segment // by first index; appends go to the last
	first    uint64     // 0: empty
	last     uint64
	synced   uint64 // the last index made durable (SyncedIndex)
	failed   error  // a failed sync: nothing is trusted any more
	buf      []byte
	unsynced []*segment    // written to since their last sync
	waiters  []func(error) // StoreLogsAsync callbacks for the next sync
	// unsyncedBytes were appended since the last sync took its segments;
	// syncBytes is a moving average of that per sync (the zero-fill
	// ahead runs only while it is small, see fillMaxSyncBytes).
	unsyncedBytes int64
	syncBytes     int64

	// beforeSync, when set (Faults.HoldLogSyncs), runs before each sync.
	// Guarded by mu.
	beforeSync func()
	// m, when set, counts appends and syncs. Guarded by mu.
	m *metrics.Cluster

	syncReq  chan struct{} // capacity 1: wakes syncLoop
	stop     chan struct{}
	stopOnce sync.Once
	fillReq  chan struct{}  // capacity 1: wakes fillLoop
	loops    sync.WaitGroup // syncLoop and fillLoop
}

// segment is one file of the log.
type segment struct {
	first   uint64
	path    string
	f       *os.File
	offsets []int64 // offsets[i] is where the record of index first+i starts
	size    int64   // end of its last intact record
	alloc   int64   // the file is zero-filled from size to here (fillLoop)
	// dropped: the pages below it were synced and dropped from the page
	// cache (dropSynced). Page-aligned; guarded by syncMu.
	dropped int64
}

func (s *segment) lastIndex() uint64 { return s.first + uint64(len(s.offsets)) - 1 }

const (
	segSuffix          = ".seg"
	defaultSegmentSize = 64 << 20
)

var (
	_ raft.LogStore          = (*segLog)(nil)
	_ raft.MonotonicLogStore = (*segLog)(nil)
	_ raft.AsyncLogStore     = (*segLog)(nil)
)

// openSegLog opens (or creates) the log in dir, recovering from a crash.
func openSegLog(dir string, segSize int64) (*segLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	l := &segLog{dir: dir, segSize: segSize, syncReq: make(chan struct{}, 1), fillReq: make(chan struct{}, 1), stop: make(chan struct{})}
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
	l.loops.Add(2)
	go l.syncLoop()
	go l.fillLoop()
	l.wakeFill()
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
	l.synced = l.last // found on disk
}

// SyncedIndex is the last index this log has made durable: entries past
// it are written but their sync has not returned (a stalled disk shows as
// a gap to LastIndex that does not close).
func (l *segLog) SyncedIndex() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.synced
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

// StoreLogs implements raft.LogStore (a follower's append): the records,
// and every record appended before them, are durable when it returns.
func (l *segLog) StoreLogs(logs []*raft.Log) error {
	if err := l.appendLogs(logs, nil); err != nil {
		return err
	}
	return l.flush()
}

// StoreLogsAsync implements raft.AsyncLogStore (the leader's append): the
// records are written and readable when it returns, and syncLoop makes
// them durable and then calls synced. Raft replicates them meanwhile and
// counts the leader towards their quorum only after synced.
func (l *segLog) StoreLogsAsync(logs []*raft.Log, synced func(error)) error {
	if err := l.appendLogs(logs, synced); err != nil {
		return err
	}
	select {
	case l.syncReq <- struct{}{}:
	default: // a sync is already due; it will take these too
	}
	return nil
}

// appendLogs writes a batch's records at the end of the log without
// syncing, and queues synced (if any) for the next sync.
func (l *segLog) appendLogs(logs []*raft.Log, synced func(error)) error {
	if len(logs) == 0 {
		if synced != nil {
			l.mu.Lock()
			l.waiters = append(l.waiters, synced)
			l.mu.Unlock()
		}
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
	s.offsets = append(s.offsets, offsets...)
	s.size += int64(len(l.buf))
	s.alloc = max(s.alloc, s.size)
	l.unsyncedBytes += int64(len(l.buf))
	if l.fillDue(s, zeroAhead/2) {
		l.wakeFill()
	}
	if l.first == 0 {
		l.first = next
	}
	l.last = logs[len(logs)-1].Index
	if cap(l.buf) > 4*defaultSegmentSize {
		l.buf = nil // do not keep a huge batch's buffer
	}
	if !slices.Contains(l.unsynced, s) {
		l.unsynced = append(l.unsynced, s)
	}
	if l.m != nil {
		l.m.LogAppends.Inc()
	}
	if synced != nil {
		l.waiters = append(l.waiters, synced)
	}
	return nil
}

// flush syncs every segment written to since its last sync, then answers
// the StoreLogsAsync calls that were waiting for it, in order. After a
// failed sync the kernel may have dropped the dirty pages: what the files
// hold is unknown, so the log stops (every later call fails).
func (l *segLog) flush() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	segs, waiters, err, hook, m, upto := l.unsynced, l.waiters, l.failed, l.beforeSync, l.m, l.last
	l.unsynced, l.waiters = nil, nil
	ends := make([]int64, len(segs)) // what this sync makes durable
	for i, s := range segs {
		ends[i] = s.size
	}
	bytes := l.unsyncedBytes
	if len(segs) > 0 {
		l.syncBytes += (bytes - l.syncBytes) / 8
		l.unsyncedBytes = 0
	}
	l.mu.Unlock()
	if hook != nil && len(segs) > 0 {
		hook()
	}
	start := time.Now()
	for _, s := range segs {
		if err != nil {
			break
		}
		if e := datasync(s.f); e != nil {
			err = fmt.Errorf("raft log: sync %s: %w", s.path, e)
			l.mu.Lock()
			l.failed = err
			l.mu.Unlock()
		}
	}
	if err == nil {
		// DeleteRange takes syncMu, so the log was not cut below upto
		l.mu.Lock()
		l.synced = upto
		l.mu.Unlock()
	}
	if m != nil && len(segs) > 0 && err == nil {
		m.LogSyncs.Inc()
		m.LogSyncedBytes.Add(float64(bytes))
		m.LogSyncDuration.Observe(time.Since(start).Seconds())
	}
	for _, w := range waiters {
		w(err)
	}
	if err == nil { // after the answers: the drop is off the acknowledgement path
		for i, s := range segs {
			dropSynced(s, ends[i])
		}
	}
	return err
}

// Dropping the synced log from the page cache. Once synced, a record is
// read back only by a follower catching up from beyond the in-memory
// logCache (64 MiB of the newest entries) or by a restart's replay; the
// page cache holding it serves almost nothing, but every append needs new
// pages for it. Dropped, the clean pages go back to the kernel's free
// lists, and the next appends reuse them while they are still hot.
//
// Measured on this project's benchmark machine (a VM whose memory the
// host maps in on a page's first touch): writing 512 MiB to a new file
// with dd took 1.13 s of system time when the pages came from untouched
// memory and 0.13 s right after another file's pages were freed. A
// follower under 1 KiB async publishing spent 26% of its CPU in the log's
// pwrite. On any machine it also stops the log, written once and hardly
// read, from pushing the state file's pages out of the cache.
//
// The last partial page stays: the next append writes into it, and
// dropped it would have to be read back from the disk first. The kernel
// drops whole folios only (a file's folios are up to 2 MiB on x86-64,
// its PMD size), so the folio holding that page stays too; each drop
// therefore starts folioMax below where the last one ended, to take the
// rest of that folio once it is synced. (Where folios are larger, what a
// drop misses stays cached until the kernel needs the memory.)
var pageSize = int64(os.Getpagesize())

const folioMax = 2 << 20

// dropSynced drops s's pages below end, which a sync has just made
// durable (so they are clean), from the page cache. Called with syncMu
// held, which keeps s open.
func dropSynced(s *segment, end int64) { dropClean(s.f, &s.dropped, end) }

// dropClean drops f's pages below end (rounded down to a page), which
// must be clean, from the page cache, from folioMax below *dropped on,
// and moves *dropped to there. Advice only: a failure costs nothing but
// memory.
func dropClean(f *os.File, dropped *int64, end int64) {
	end &^= pageSize - 1
	if end <= *dropped {
		return
	}
	from := max(0, *dropped-folioMax)
	_ = dropCache(f, from, end-from)
	*dropped = end
}

// syncLoop runs the syncs StoreLogsAsync asks for. Appends made while one
// runs are taken by the next, so a busy leader syncs once per batch of
// appends, not once per append.
func (l *segLog) syncLoop() {
	defer l.loops.Done()
	for {
		select {
		case <-l.syncReq:
			_ = l.flush() // the error reaches the waiters and every later call
		case <-l.stop:
			return
		}
	}
}

// Zero-filling ahead of the appends. An fdatasync after an append that
// extends the file must also commit the file's new size and blocks to the
// filesystem journal; one after an append that overwrites blocks already
// written only writes the data. fillLoop keeps zeroAhead bytes past the
// end of the last segment written with zeros and synced, in zeroChunk
// steps, so the appends' syncs are the cheap kind. Measured with three
// processes each appending 8 KiB and fdatasyncing on this machine's disk:
// 5,000 -> 7,700 syncs/s, p50 0.47 -> 0.28 ms; 128 KiB appends 1,940 ->
// 2,910 syncs/s. Zeros are never a record (a zero length is refused), so
// a crash leaves a zero tail that opening truncates like a torn one; the
// zeros stop at segSize, where the next append starts a new segment, so
// only the last segment can end in zeros.
//
// The zeros cost a second write of every byte of the log, and a fill step
// holds the syncs off while its own sync runs (about 6 ms per MiB under
// load). That pays only while the syncs are small and many: measured with
// 1 KiB messages (about 170 KB per sync), filling took `js pub async`
// from 22.1k to 16.6k msgs/s (medians of 8 alternated runs), while with
// 128 B messages (about 40 KB per sync) it gained 37.9k -> 40.6k, and
// `js pub sync` 580 -> 607. So the filling stops while the moving average
// of bytes per sync is fillMaxSyncBytes or more; appends then extend the
// file, whose syncs pay the journal commit (about 0.2 ms each).
const (
	zeroAhead        = 4 << 20
	zeroChunk        = 1 << 20
	fillMaxSyncBytes = 64 << 10
)

var zeros = make([]byte, zeroChunk)

// fillDue reports whether s, the last segment, has fewer than ahead
// zeroed bytes past its records, room for more, and syncs small enough for
// the filling to pay. Appends wake fillLoop at half of zeroAhead; it then
// fills up to all of it. Called with mu held.
func (l *segLog) fillDue(s *segment, ahead int64) bool {
	return s.alloc-s.size < ahead && s.alloc < l.segSize && l.syncBytes < fillMaxSyncBytes
}

func (l *segLog) wakeFill() {
	select {
	case l.fillReq <- struct{}{}:
	default:
	}
}

func (l *segLog) fillLoop() {
	defer l.loops.Done()
	for {
		select {
		case <-l.fillReq:
			for l.fillStep() {
			}
		case <-l.stop:
			return
		}
	}
}

// fillStep zero-fills and syncs one chunk past the last segment's zeroed
// end; false when nothing is left to do. The zeros are written under mu
// (appends write below them, never into them) and synced under syncMu
// (nothing closes or truncates the file meanwhile). A failed write (a full
// disk) only stops the filling; a failed sync stops the log, as any.
func (l *segLog) fillStep() bool {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if l.failed != nil || len(l.segs) == 0 {
		l.mu.Unlock()
		return false
	}
	s := l.segs[len(l.segs)-1]
	s.alloc = max(s.alloc, s.size)
	if !l.fillDue(s, zeroAhead) {
		l.mu.Unlock()
		return false
	}
	n := min(zeroChunk, l.segSize-s.alloc)
	if _, err := s.f.WriteAt(zeros[:n], s.alloc); err != nil {
		l.mu.Unlock()
		return false
	}
	s.alloc += n
	hook := l.beforeSync
	l.mu.Unlock()
	if hook != nil {
		hook()
	}
	if err := datasync(s.f); err != nil {
		l.mu.Lock()
		if l.failed == nil {
			l.failed = fmt.Errorf("raft log: sync %s: %w", s.path, err)
		}
		l.mu.Unlock()
		return false
	}
	return true
}

// setBeforeSync installs the hook run before each sync (Faults).
func (l *segLog) setBeforeSync(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.beforeSync = f
}

// setMetrics makes the log count its appends and syncs in m.
func (l *segLog) setMetrics(m *metrics.Cluster) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m = m
}

// forget drops segments about to be closed from the ones waiting for a
// sync (their records are no longer part of the log). Called with mu held.
func (l *segLog) forget(gone ...*segment) {
	l.unsynced = slices.DeleteFunc(l.unsynced, func(s *segment) bool { return slices.Contains(gone, s) })
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
		// Only the last segment may have a torn tail after a crash. (It
		// has no zeros left either: they stop at segSize.)
		if slices.Contains(l.unsynced, s) {
			if err := datasync(s.f); err != nil {
				l.failed = fmt.Errorf("raft log: sync %s: %w", s.path, err)
				return nil, l.failed
			}
			l.forget(s)
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
	l.syncMu.Lock() // no sync runs on a segment being closed or truncated
	defer l.syncMu.Unlock()
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
		l.first, l.last, l.synced = 0, 0, 0
	case lo == l.first:
		// whole segments up to hi go; the rest of the one holding hi
		// stays on disk but is no longer part of the log
		n := 0
		for n < len(l.segs)-1 && l.segs[n].lastIndex() <= hi {
			n++
		}
		if n > 0 {
			gone := l.segs[:n]
			l.forget(gone...)
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
		s.size, s.offsets, s.alloc = s.offsets[k], s.offsets[:k], s.offsets[k]
		s.dropped = min(s.dropped, s.size&^(pageSize-1))
		l.forget(s)       // the sync above made what is left of it durable
		l.last = lo - 1   // not below first: that is the delete-everything case
		l.synced = l.last // earlier segments were synced before this one began
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
		l.forget(s)
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

// Close stops the sync goroutine and closes the segment files. Appends
// not synced yet are synced first, so their callbacks are answered.
func (l *segLog) Close() error {
	l.stopOnce.Do(func() { close(l.stop) })
	l.loops.Wait()
	err := l.flush()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(err, l.closeFiles())
}

func (l *segLog) closeFiles() error {
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, s.f.Close())
	}
	l.segs = nil
	return errors.Join(errs...)
}
