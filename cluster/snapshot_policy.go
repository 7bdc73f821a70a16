package cluster

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/flotilla/flotilla/metrics"
)

// When to snapshot. A snapshot here is a copy of the whole state file, so
// its cost grows with the state, not with the log it lets Raft drop.
// raft's own trigger (a fixed number of entries since the last snapshot)
// therefore copied gigabytes every few thousand entries once a stream was
// big: on a stream growing to 10 million messages, snapshots wrote more
// than the publishes did, and each stalled publishing (docs/benchmarks.md).
//
// The node triggers snapshots itself instead (raft's trigger is off):
// once SnapshotThreshold entries have been applied since the last snapshot
// AND the command bytes applied since then reach SnapshotLogRatio times the
// state's size. With ratio r, the log between snapshots stays below about
// r times the state (plus TrailingLogs entries), a snapshot writes at most
// 1/r bytes per byte of log, and a node rebuilding its state after a
// machine crash replays at most that much log. A state that only grows
// (an append-only stream, whose state grows faster than its log) is then
// rarely copied at all; one that churns (a work queue, a stream at its
// limits) is small or is copied once per its size in new log.
//
// Every replica applies the same entries, so without more they would all
// reach the threshold at the same index and snapshot at once: on a shared
// disk (or one that is simply busy) three gigabyte copies at the same time
// starved the followers' log writes long enough for the leader to lose its
// lease (growth run with ratio 0, 2026-11-29). Each node therefore scales
// both thresholds by its own random factor in [1, 1.5), drawn anew after
// each snapshot, which spreads the replicas' snapshots apart.

// snapshotBook is what the policy keeps: the command bytes applied since
// the node started, and that count as of the last snapshot written here.
// Writers: raft's FSM goroutine (applied, through fsmAdapter) and its
// snapshot goroutine (persisted). The entries since the last snapshot come
// from raft, which also knows of snapshots installed from the leader.
type snapshotBook struct {
	applied   atomic.Uint64 // command bytes applied since start
	markBytes atomic.Uint64 // applied as of the last snapshot written here
	jitter    atomic.Uint64 // math.Float64bits of this round's factor in [1, 1.5)

	dir       string          // raft's FileSnapshotStore directory
	syncBytes int64           // pacing step (DefaultSnapshotSyncBytes); <= 0: off
	rate      int64           // bytes per second at most (DefaultSnapshotWriteRate); 0: no limit
	stop      <-chan struct{} // the node's shutdown: a paced write gives up
	m         *metrics.Cluster
	log       *zap.Logger
}

// pacedSink opens the writer a snapshot is written through.
func (b *snapshotBook) pacedSink(sink raft.SnapshotSink) *pacedSink {
	p, err := openPacedSink(sink, b.dir, b.syncBytes, b.rate, b.stop)
	if err != nil {
		b.log.Warn("writing snapshot without pacing", zap.Error(err))
	}
	return p
}

// newRound draws the jitter factor for the next snapshot.
func (b *snapshotBook) newRound() { b.jitter.Store(math.Float64bits(1 + rand.Float64()/2)) }

func (b *snapshotBook) factor() float64 { return math.Float64frombits(b.jitter.Load()) }

// persisted records a snapshot that was written in full.
func (b *snapshotBook) persisted(index, applied uint64, size int64, took time.Duration) {
	b.markBytes.Store(applied)
	b.newRound()
	b.m.Snapshots.Inc()
	b.m.SnapshotBytes.Set(float64(size))
	b.m.SnapshotSeconds.Set(took.Seconds())
	b.log.Info("snapshot written", zap.Uint64("raft_index", index), zap.Int64("bytes", size),
		zap.Duration("took", took))
}

// snapshotDue is the policy (see above). ratio <= 0 leaves the entry count
// alone to decide, as raft's trigger does.
func snapshotDue(entries, logBytes uint64, stateSize int64, threshold uint64, ratio float64) bool {
	if entries < threshold {
		return false
	}
	return ratio <= 0 || float64(logBytes) >= ratio*float64(stateSize)
}

// snapshotLoop checks the policy every SnapshotInterval and takes the
// snapshots it asks for, one at a time.
func (n *Node) snapshotLoop() { n.every(n.cfg.SnapshotInterval, n.maybeSnapshot) }

func (n *Node) maybeSnapshot() {
	b := n.snapBook
	last, _ := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	entries := n.applied.Load() - min(last, n.applied.Load())
	logBytes := b.applied.Load() - b.markBytes.Load()
	n.m.LogBytesSinceSnapshot.Set(float64(logBytes))
	f := b.factor()
	threshold := uint64(float64(n.cfg.SnapshotThreshold) * f)
	if entries < threshold {
		return // cheap: no need to ask the state machine its size
	}
	size, err := n.sm.Size()
	if err != nil {
		n.log.Warn("snapshot policy: state size unknown", zap.Error(err))
		return
	}
	if !snapshotDue(entries, logBytes, size, threshold, n.cfg.SnapshotLogRatio*f) {
		return
	}
	n.log.Info("taking snapshot", zap.Uint64("entries_since", entries), zap.Uint64("log_bytes_since", logBytes),
		zap.Int64("state_bytes", size))
	if err := n.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		n.log.Warn("snapshot failed", zap.Error(err))
	}
}
