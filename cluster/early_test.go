package cluster_test

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/internal/testcluster"
	"github.com/flotilla/flotilla/internal/testutil"
	"github.com/flotilla/flotilla/metrics"
)

// earlySM answers entries whose data starts with "early" through
// Entry.Early and then blocks in ApplyBatch until released, as a store
// commit would; every other entry is answered by ApplyBatch's result.
type earlySM struct {
	release chan struct{}
	mu      sync.Mutex
	offered int // entries that came with an Early function
}

func (s *earlySM) ApplyBatch(entries []cluster.Entry) []any {
	out := make([]any, len(entries))
	block := false
	for i, e := range entries {
		out[i] = "late " + string(e.Data)
		if e.Early == nil {
			continue
		}
		s.mu.Lock()
		s.offered++
		s.mu.Unlock()
		if bytes.HasPrefix(e.Data, []byte("early")) {
			e.Early("early " + string(e.Data))
			e.Early("ignored: only the first answer counts")
			block = true
		}
	}
	if block {
		<-s.release
	}
	return out
}

func (s *earlySM) Snapshot() (cluster.Snapshot, error) { return emptySnap{}, nil }
func (s *earlySM) Restore(r io.Reader) error           { _, err := io.Copy(io.Discard, r); return err }
func (s *earlySM) Size() (int64, error)                { return 0, nil }

type emptySnap struct{}

func (emptySnap) WriteTo(io.Writer) (int64, error) { return 0, nil }
func (emptySnap) Release()                         {}

func startSingle(t *testing.T, sm cluster.StateMachine) *cluster.Node {
	t.Helper()
	cfg := testcluster.TestConfig()
	cfg.NodeID = "n1"
	cfg.DataDir = t.TempDir()
	cfg.ClusterAddr = "127.0.0.1:0"
	cfg.GossipAddr = "127.0.0.1:0"
	cfg.ClientAddr = "127.0.0.1:0"
	cfg.BootstrapExpect = 1
	n, err := cluster.New(cfg, sm, metrics.New(prometheus.NewRegistry()).Cluster, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	testutil.Eventually(t, 10*time.Second, func() error {
		if !n.IsLeader() {
			return fmt.Errorf("not leader yet")
		}
		return nil
	})
	return n
}

// A proposal's Wait returns the state machine's early answer while the
// state machine is still inside ApplyBatch, and the first answer only; a
// proposal it does not answer early gets ApplyBatch's result.
func TestProposal_EarlyAnswer(t *testing.T) {
	t.Parallel()
	sm := &earlySM{release: make(chan struct{})}
	n := startSingle(t, sm)
	var release sync.Once
	free := func() { release.Do(func() { close(sm.release) }) }
	t.Cleanup(free) // runs before the node's Close: a failed test must not leave ApplyBatch blocked

	res, err := n.Apply(ctxT(t, 10*time.Second), []byte("plain"))
	if err != nil || res != "late plain" {
		t.Fatalf("plain proposal: %v, %v; want ApplyBatch's result", res, err)
	}

	got := make(chan any, 1)
	go func() {
		r, err := n.Propose(ctxT(t, 10*time.Second), []byte("early one")).Wait()
		if err != nil {
			r = err
		}
		got <- r
	}()
	select {
	case r := <-got:
		if r != "early early one" {
			t.Fatalf("early proposal answered %v", r)
		}
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("no early answer while ApplyBatch was still running")
	}
	free()

	sm.mu.Lock()
	offered := sm.offered
	sm.mu.Unlock()
	if offered != 2 {
		t.Fatalf("Early offered for %d entries, want 2 (both proposals of this node)", offered)
	}
}
