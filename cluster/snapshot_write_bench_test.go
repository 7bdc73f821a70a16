package cluster

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// BenchmarkSnapshotPacing shows what a snapshot write does to the Raft
// log's appends on the same disk: a goroutine appends 4 KiB and
// fdatasyncs it in a loop, as the log does per batch, while a snapshot of
// FLOTILLA_BENCH_SNAPSHOT_MIB (default 1024) MiB goes through raft's file
// sink: unpaced, paced at full speed, and paced at the default rate. It reports the log's sync latency during the
// snapshot (p50, p99, max) and the snapshot's duration. A benchmark, not a
// test (it writes gigabytes); run it with
//
//	go test ./cluster -run '^$' -bench SnapshotPacing -benchtime 1x
func BenchmarkSnapshotPacing(b *testing.B) {
	size := int64(1024)
	if v, err := strconv.ParseInt(os.Getenv("FLOTILLA_BENCH_SNAPSHOT_MIB"), 10, 64); err == nil && v > 0 {
		size = v
	}
	size <<= 20
	for _, pc := range []struct{ step, rate int64 }{{0, 0}, {DefaultSnapshotSyncBytes, 0}, {DefaultSnapshotSyncBytes, DefaultSnapshotWriteRate}} {
		name := "unpaced"
		if pc.step > 0 {
			name = "step-" + strconv.FormatInt(pc.step>>20, 10) + "MiB-rate-" + strconv.FormatInt(pc.rate>>20, 10) + "MiBps"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				syncs, took := snapshotUnderLogLoad(b, size, pc.step, pc.rate)
				slices.Sort(syncs)
				q := func(p float64) float64 { return float64(syncs[int(p*float64(len(syncs)-1))].Microseconds()) / 1000 }
				b.ReportMetric(q(0.5), "log-sync-p50-ms")
				b.ReportMetric(q(0.99), "log-sync-p99-ms")
				b.ReportMetric(q(1), "log-sync-max-ms")
				b.ReportMetric(float64(len(syncs)), "log-syncs")
				b.ReportMetric(took.Seconds(), "snapshot-s")
			}
		})
	}
}

// snapshotUnderLogLoad writes a snapshot of size bytes while appending to
// a log file, and returns the log's sync latencies during the snapshot
// and how long the snapshot took (until raft's sink was closed).
func snapshotUnderLogLoad(b *testing.B, size, step, rate int64) ([]time.Duration, time.Duration) {
	dir := b.TempDir()
	store, err := raft.NewFileSnapshotStore(dir, 1, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	stop := make(chan struct{})
	var syncs []time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		rec := make([]byte, 4096)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := logf.Write(rec); err != nil {
				b.Error(err)
				return
			}
			t := time.Now()
			if err := datasync(logf); err != nil {
				b.Error(err)
				return
			}
			syncs = append(syncs, time.Since(t))
		}
	})
	start := time.Now()
	sink, err := store.Create(raft.SnapshotVersionMax, 10, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	p, err := openPacedSink(sink, dir, step, rate, nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(rand.IntN(256))
	}
	for n := int64(0); n < size; n += int64(len(buf)) {
		if _, err := p.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.close(); err != nil {
		b.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	return syncs, took
}
