package cluster_test

import (
	"testing"
	"time"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/internal/testcluster"
)

// The node snapshots by weighing the log written since its last snapshot
// against the state's size (snapshot_policy.go): not while the log is
// smaller, soon once it is bigger.
func TestCluster_SnapshotPolicy_WeighsLogAgainstState(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 1, testcluster.WithConfig(func(_ int, cfg *cluster.Config) {
		cfg.SnapshotInterval = 10 * time.Millisecond
		cfg.SnapshotThreshold = 4
		cfg.SnapshotLogRatio = 1
	}))
	n := c.WaitLeader()
	size, err := n.Store.Size()
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, size/8)
	apply := func(k int) {
		for range k {
			if _, err := n.Cluster.Apply(ctxT(t, 5*time.Second), broker.EncodeCommand(broker.CmdNoop, body)); err != nil {
				t.Fatalf("apply: %v", err)
			}
		}
	}
	// Half the state's size in log: the policy looks (the gauge shows it
	// has seen all of it) and takes no snapshot.
	apply(4)
	deadline := time.Now().Add(10 * time.Second)
	for cluster.GaugeValue(t, n.Reg, "flotilla_cluster_log_bytes_since_snapshot") < float64(4*len(body)) {
		if time.Now().After(deadline) {
			t.Fatal("the snapshot policy never looked at the log")
		}
		time.Sleep(5 * time.Millisecond) // polling the loop's gauge
	}
	if got := n.Cluster.Status().LastSnapshotIndex; got != 0 {
		t.Fatalf("snapshot at index %d with half the state's size in log", got)
	}
	// Past the state's size: a snapshot follows.
	apply(12)
	for n.Cluster.Status().LastSnapshotIndex == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot after 2x the state's size in log (%d bytes of state)", size)
		}
		time.Sleep(5 * time.Millisecond) // polling raft's stats
	}
	if got := cluster.GaugeValue(t, n.Reg, "flotilla_cluster_snapshots_total"); got != 1 {
		t.Fatalf("snapshots_total %v, want 1", got)
	}
	if got := cluster.GaugeValue(t, n.Reg, "flotilla_cluster_snapshot_bytes"); got < float64(size) {
		t.Fatalf("snapshot_bytes %v, want at least the state's %d", got, size)
	}
}
