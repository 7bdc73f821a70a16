package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/internal/testcluster"
	"github.com/flotilla/flotilla/internal/testutil"
	"github.com/flotilla/flotilla/metrics"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(d))
	t.Cleanup(cancel)
	return ctx
}

// mustApplyNoop proposes a no-op on the leader and returns its index. On
// a loaded machine leadership can move while it commits; a no-op is
// harmless to repeat, so it retries on the new leader.
func mustApplyNoop(t *testing.T, c *testcluster.Cluster) uint64 {
	t.Helper()
	var err error
	for range 5 {
		leader := c.WaitLeader()
		if _, err = leader.Cluster.Apply(ctxT(t, 5*time.Second), broker.EncodeCommand(broker.CmdNoop, nil)); err == nil {
			return leader.Cluster.AppliedIndex()
		}
		if !errors.Is(err, cluster.ErrLeadershipLost) && !errors.Is(err, cluster.ErrNotLeader) {
			break
		}
	}
	t.Fatalf("apply: %v", err)
	return 0
}

func TestCluster_BootstrapExpect_FormsOneConfiguration(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	c.WaitVoters("n1", "n2", "n3")
	leader := c.WaitLeader()
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, n := range c.Running() {
			if id, _ := n.Cluster.Leader(); id != leader.ID {
				return fmt.Errorf("%s sees leader %q, want %s", n.ID, id, leader.ID)
			}
			if links := n.Cluster.Status().PeerLinks; len(links) != 2 {
				return fmt.Errorf("%s has peer links %v", n.ID, links)
			}
		}
		return nil
	})
	c.WaitApplied(mustApplyNoop(t, c))
}

func TestCluster_ApplyOnFollower_IsNotLeader(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	c.WaitLeader()
	f := c.Followers()[0]
	_, err := f.Cluster.Apply(ctxT(t, time.Second), broker.EncodeCommand(broker.CmdNoop, nil))
	if !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("apply on follower: %v, want ErrNotLeader", err)
	}
}

func TestCluster_LeaderKilled_NewLeaderElected(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	old := c.WaitLeader()
	idx := mustApplyNoop(t, c)
	start := time.Now()
	c.Kill(old.ID)
	leader := c.WaitLeader()
	if leader.ID == old.ID {
		t.Fatal("killed node still leader")
	}
	t.Logf("failover took %v", time.Since(start))
	c.WaitApplied(idx)
	c.WaitApplied(mustApplyNoop(t, c)) // the survivors still commit
}

func TestCluster_MinorityPartition_CannotElect(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	c.WaitLeader()
	isolated := c.Followers()[0]
	c.Partition(isolated.ID)
	// For several election timeouts, the isolated node never leads, and
	// the majority keeps (or re-elects) a leader that commits.
	deadline := time.Now().Add(testutil.Scale(2 * time.Second))
	for time.Now().Before(deadline) {
		if isolated.Cluster.IsLeader() {
			t.Fatal("isolated minority node became leader")
		}
		time.Sleep(20 * time.Millisecond) // sampling an invariant over time, not synchronising
	}
	leader := c.WaitLeader()
	if leader.ID == isolated.ID {
		t.Fatal("isolated node leads")
	}
	if _, err := isolated.Cluster.Apply(ctxT(t, time.Second), broker.EncodeCommand(broker.CmdNoop, nil)); err == nil {
		t.Fatal("isolated node committed a write")
	}
	idx := mustApplyNoop(t, c)
	c.Heal()
	c.WaitApplied(idx) // the healed node catches up
}

func TestCluster_RestartWithoutJoin_Rejoins(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	c.WaitLeader()
	f := c.Followers()[0]
	c.Kill(f.ID)
	idx := mustApplyNoop(t, c)
	c.Restart(f.ID)
	c.WaitApplied(idx)
	c.WaitVoters("n1", "n2", "n3")
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, m := range f.Cluster.Members() {
			if m.Status != cluster.StatusAlive {
				return fmt.Errorf("%s sees %s as %s", f.ID, m.ID, m.Status)
			}
		}
		if n := len(f.Cluster.Members()); n != 3 {
			return fmt.Errorf("%s sees %d members", f.ID, n)
		}
		return nil
	})
}

func TestCluster_GracefulStop_StaysVoter(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	c.WaitLeader()
	f := c.Followers()[0]
	c.Stop(f.ID)
	// A plain stop is not a decommission: the voter stays.
	testutil.Eventually(t, 5*time.Second, func() error {
		for _, m := range c.WaitLeader().Cluster.Members() {
			if m.ID == f.ID && m.Status == cluster.StatusLeft {
				return nil
			}
		}
		return fmt.Errorf("leave not seen")
	})
	c.WaitVoters("n1", "n2", "n3")
	c.Restart(f.ID)
	c.WaitApplied(mustApplyNoop(t, c))
}

func TestCluster_JoinLater_BecomesVoter_RepeatedJoinIsNoop(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 1)
	n2 := c.Add()
	c.WaitVoters("n1", "n2")
	c.WaitApplied(mustApplyNoop(t, c))
	// Joining again changes nothing.
	c.Kill(n2.ID)
	n2.Config.Join = []string{c.Node(0).Cluster.GossipAddr()}
	c.Restart(n2.ID)
	c.WaitVoters("n1", "n2")
	c.WaitApplied(mustApplyNoop(t, c))
}

func TestCluster_NewAddress_UpdatesNotDuplicates(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	c.WaitLeader()
	f := c.Followers()[0]
	c.Kill(f.ID)
	f.Config.ClusterAddr = "127.0.0.1:0" // a new address, bound at restart
	f.Config.GossipAddr = "127.0.0.1:0"
	f.Config.Join = []string{c.Leader().Cluster.GossipAddr()}
	c.RestartKeepJoin(f.ID)
	testutil.Eventually(t, 15*time.Second, func() error {
		v := c.Voters()
		if len(v) != 3 {
			return fmt.Errorf("voters %v", v)
		}
		if v[f.ID] != f.Config.ClusterAddr {
			return fmt.Errorf("%s at %s, want %s", f.ID, v[f.ID], f.Config.ClusterAddr)
		}
		return nil
	})
	c.WaitApplied(mustApplyNoop(t, c))
}

func TestCluster_RemoveNode_FromFollower(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	c.WaitLeader()
	fs := c.Followers()
	asker, victim := fs[0], fs[1]
	if err := asker.Cluster.RemoveNode(ctxT(t, 10*time.Second), victim.ID); err != nil {
		t.Fatalf("remove via follower: %v", err)
	}
	var want []string
	for _, n := range c.Nodes() {
		if n.ID != victim.ID {
			want = append(want, n.ID)
		}
	}
	c.WaitVoters(want...)
	// The removed node leaves gossip and is not re-added by reconcile.
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, m := range c.WaitLeader().Cluster.Members() {
			if m.ID == victim.ID && m.Status == cluster.StatusLeft {
				return nil
			}
		}
		return fmt.Errorf("removed node still a live member")
	})
	c.WaitVoters(want...)
	if err := asker.Cluster.RemoveNode(ctxT(t, 5*time.Second), "nope"); !errors.Is(err, cluster.ErrUnknownNode) {
		t.Fatalf("remove unknown: %v, want ErrUnknownNode", err)
	}

	// Wiped and started again under the same id, it is a new node: the
	// leader adds it back (the tombstone only keeps the old incarnation
	// out).
	c.Kill(victim.ID)
	c.Wipe(victim.ID)
	c.RejoinEmpty(victim.ID)
	var all []string
	for _, n := range c.Nodes() {
		all = append(all, n.ID)
	}
	c.WaitVoters(all...)
	mustApplyNoop(t, c)
}

func TestCluster_ReapAfter_RemovesDeadMember(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithConfig(func(i int, cfg *cluster.Config) { cfg.ReapAfter = 500 * time.Millisecond }))
	c.WaitLeader()
	f := c.Followers()[0]
	c.Kill(f.ID)
	var want []string
	for _, n := range c.Nodes() {
		if n.ID != f.ID {
			want = append(want, n.ID)
		}
	}
	c.WaitVoters(want...)
	// Two voters left: reaping the next dead one would break quorum.
	g := c.Followers()[0]
	c.Kill(g.ID)
	deadline := time.Now().Add(testutil.Scale(1500 * time.Millisecond))
	for time.Now().Before(deadline) {
		if l := c.Leader(); l != nil && len(l.Cluster.Status().Servers) < 2 {
			t.Fatal("reaped below quorum")
		}
		time.Sleep(20 * time.Millisecond) // sampling an invariant over time
	}
}

func TestCluster_TransferLeadership_FromAnyNode(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	old := c.WaitLeader()
	target := c.Followers()[0]
	asker := c.Followers()[1]
	if err := asker.Cluster.TransferLeadership(ctxT(t, 10*time.Second), target.ID); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if l := c.Leader(); l == nil || l.ID != target.ID {
			return fmt.Errorf("leader is not %s (was %s)", target.ID, old.ID)
		}
		return nil
	})
}

func TestCluster_Forward_WaitsForElection(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	old := c.WaitLeader()
	asker := c.Followers()[0]
	c.Kill(old.ID)
	// Issued right after the leader died: the request waits for the
	// election instead of failing.
	if err := asker.Cluster.TransferLeadership(ctxT(t, 10*time.Second), asker.ID); err != nil {
		t.Fatalf("forward during election: %v", err)
	}
}

// A node answers questions about leadership before Raft exists: peers'
// forwarded requests are served from the moment the cluster port listens,
// and one arriving during a restart used to crash the node (nil Raft).
func TestNode_LeadershipQueriesBeforeStart(t *testing.T) {
	t.Parallel()
	cfg := testcluster.TestConfig()
	cfg.NodeID, cfg.DataDir = "lone", t.TempDir()
	cfg.ClusterAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0"
	n, err := cluster.New(cfg, nil, metrics.New(prometheus.NewRegistry()).Cluster, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if n.IsLeader() {
		t.Fatal("a node that has not started leads")
	}
	if id, addr := n.Leader(); id != "" || addr != "" {
		t.Fatalf("leader %q %q before start", id, addr)
	}
	if _, err := n.Apply(ctxT(t, time.Second), broker.EncodeCommand(broker.CmdNoop, nil)); !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("apply before start: %v", err)
	}
	if err := n.Barrier(ctxT(t, time.Second)); !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("barrier before start: %v", err)
	}
}
