package cluster

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// newFileSink opens a snapshot sink of raft's FileSnapshotStore in a temp
// dir, as the node does.
func newFileSink(t *testing.T) (string, *raft.FileSnapshotStore, raft.SnapshotSink) {
	t.Helper()
	dir := t.TempDir()
	store, err := raft.NewFileSnapshotStore(dir, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := store.Create(raft.SnapshotVersionMax, 10, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dir, store, sink
}

// The pacer finds the file behind raft's FileSnapshotSink (it depends on
// raft's directory layout, which this pins), writes it out in steps, and
// what raft stores is exactly what was written.
func TestPacedSink_FindsRaftsFile(t *testing.T) {
	t.Parallel()
	dir, store, sink := newFileSink(t)
	const step = 256 << 10
	p, err := openPacedSink(sink, dir, step, 0, nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if p.f == nil {
		t.Fatal("no handle on raft's snapshot file: pacing is off")
	}
	data := make([]byte, 5*step+1000)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 64<<10) // bbolt writes a page or more at a time
		if _, err := p.Write(rest[:n]); err != nil {
			t.Fatalf("write: %v", err)
		}
		rest = rest[n:]
	}
	if p.steps != 5 {
		t.Fatalf("%d write-outs for %d bytes in steps of %d, want 5", p.steps, len(data), step)
	}
	if err := p.close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	_, rc, err := store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("stored snapshot differs from what was written (%d vs %d bytes)", len(got), len(data))
	}
}

// The write rate holds: 4 MiB in 1 MiB steps at 32 MiB/s take at least
// 125 ms.
func TestPacedSink_Rate(t *testing.T) {
	t.Parallel()
	dir, _, sink := newFileSink(t)
	defer sink.Cancel()
	p, err := openPacedSink(sink, dir, 1<<20, 32<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	buf := make([]byte, 64<<10)
	for range 64 {
		if _, err := p.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(p.start); took < 125*time.Millisecond {
		t.Fatalf("4 MiB at 32 MiB/s took %v", took)
	}
}

// A paced write gives up once the node shuts down, also while it waits
// for the rate.
func TestPacedSink_StopsOnShutdown(t *testing.T) {
	t.Parallel()
	dir, _, sink := newFileSink(t)
	defer sink.Cancel()
	stop := make(chan struct{})
	p, err := openPacedSink(sink, dir, 64<<10, 1024, stop) // a step takes a minute at this rate
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	done := make(chan error, 1)
	go func() {
		_, err := p.Write(make([]byte, 64<<10))
		done <- err
	}()
	close(stop)
	select {
	case err := <-done:
		if !errors.Is(err, ErrShutdown) {
			t.Fatalf("write after shutdown: %v, want ErrShutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("paced write did not stop at shutdown")
	}
}

// Pacing off (step 0) or another kind of sink: a plain pass-through.
func TestPacedSink_Unpaced(t *testing.T) {
	t.Parallel()
	dir, _, sink := newFileSink(t)
	defer sink.Cancel()
	p, err := openPacedSink(sink, dir, 0, 0, nil)
	if err != nil || p.f != nil {
		t.Fatalf("step 0: handle %v, err %v; want neither", p.f, err)
	}
	mem := raft.NewInmemSnapshotStore()
	msink, err := mem.Create(raft.SnapshotVersionMax, 10, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err = openPacedSink(msink, dir, 1, 0, nil)
	if err != nil || p.f != nil {
		t.Fatalf("in-memory sink: handle %v, err %v; want neither", p.f, err)
	}
	if _, err := p.Write([]byte("abc")); err != nil || p.steps != 0 {
		t.Fatalf("write: %v, %d steps", err, p.steps)
	}
}
