package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/internal/testcluster"
	"github.com/flotilla/flotilla/internal/testutil"
)

// peerAddrs is what the chaos harness passes to cut a peer off completely:
// its cluster address (Raft and frames) and its gossip address.
func peerAddrs(n *testcluster.Node) []string {
	return []string{n.Cluster.ClusterAddr(), n.Cluster.GossipAddr()}
}

// cutOneWay makes from's messages stop reaching to, the way the harness
// does it: Out on from, In on to.
func cutOneWay(from, to *testcluster.Node) {
	from.Faults.BlockDirection(cluster.Out, peerAddrs(to)...)
	to.Faults.BlockDirection(cluster.In, peerAddrs(from)...)
}

func healAll(c *testcluster.Cluster) {
	for _, n := range c.Running() {
		n.Faults.UnblockAll()
	}
}

// waitNewLeader waits until old has stepped down and another node leads.
func waitNewLeader(t *testing.T, c *testcluster.Cluster, old *testcluster.Node) *testcluster.Node {
	t.Helper()
	var leader *testcluster.Node
	testutil.Eventually(t, 15*time.Second, func() error {
		if old.Cluster.IsLeader() {
			return fmt.Errorf("%s still leads", old.ID)
		}
		leader = c.Leader()
		if leader == nil {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	return leader
}

// waitMemberStatus waits until observer sees member in one of the statuses.
func waitMemberStatus(t *testing.T, observer, member *testcluster.Node, statuses ...string) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, func() error {
		for _, m := range observer.Cluster.Members() {
			if m.ID != member.ID {
				continue
			}
			for _, s := range statuses {
				if m.Status == s {
					return nil
				}
			}
			return fmt.Errorf("%s sees %s %s, want %v", observer.ID, member.ID, m.Status, statuses)
		}
		return fmt.Errorf("%s does not know %s", observer.ID, member.ID)
	})
}

// TestFaults_IsolatedLeader_StepsDownAndCatchesUp cuts the leader off
// completely (Raft, frames and gossip, both directions, on every node): it
// steps down, the majority elects a leader and commits, gossip on both sides
// declares the other side failed; after the heal the old leader catches up.
func TestFaults_IsolatedLeader_StepsDownAndCatchesUp(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	old := c.WaitLeader()
	mustApplyNoop(t, c)
	var others []*testcluster.Node
	for _, n := range c.Running() {
		if n != old {
			others = append(others, n)
			cutOneWay(old, n)
			cutOneWay(n, old)
		}
	}
	leader := waitNewLeader(t, c, old)
	for _, n := range others {
		waitMemberStatus(t, n, old, cluster.StatusSuspect, cluster.StatusDead)
		waitMemberStatus(t, old, n, cluster.StatusSuspect, cluster.StatusDead)
	}
	if _, err := old.Cluster.Apply(ctxT(t, time.Second), broker.EncodeCommand(broker.CmdNoop, nil)); err == nil {
		t.Fatal("the isolated old leader committed a write")
	}
	if _, err := leader.Cluster.Apply(ctxT(t, 5*time.Second), broker.EncodeCommand(broker.CmdNoop, nil)); err != nil {
		t.Fatalf("majority apply: %v", err)
	}
	idx := leader.Cluster.AppliedIndex()

	healAll(c)
	c.WaitApplied(idx)
	c.WaitApplied(mustApplyNoop(t, c))
}

// TestFaults_OneWayFromLeader: the leader's messages stop reaching the
// followers, theirs still reach it. The followers hear no heartbeats and
// elect one of themselves; the old leader, cut off from every response,
// steps down. After the heal everyone applies the same log.
func TestFaults_OneWayFromLeader(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	old := c.WaitLeader()
	mustApplyNoop(t, c)
	for _, n := range c.Running() {
		if n != old {
			cutOneWay(old, n)
		}
	}
	leader := waitNewLeader(t, c, old)
	if _, err := leader.Cluster.Apply(ctxT(t, 5*time.Second), broker.EncodeCommand(broker.CmdNoop, nil)); err != nil {
		t.Fatalf("apply on the new leader: %v", err)
	}
	healAll(c)
	c.WaitApplied(mustApplyNoop(t, c))
}

// TestFaults_GossipHealsAfterLongPartition isolates a node for longer than
// memberlist keeps gossiping to dead members. Both sides declare each
// other dead and stop contacting each other; after the heal the reconnect
// loop must bring them back to alive (without it gossip, the peer links
// and connect_urls stayed split for good).
func TestFaults_GossipHealsAfterLongPartition(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithConfig(func(_ int, cfg *cluster.Config) {
		cfg.GossipToTheDeadTime = 300 * time.Millisecond
	}))
	c.WaitLeader()
	lone := c.Node(2)
	var others []*testcluster.Node
	for _, n := range c.Running() {
		if n != lone {
			others = append(others, n)
			cutOneWay(lone, n)
			cutOneWay(n, lone)
		}
	}
	for _, n := range others {
		waitMemberStatus(t, n, lone, cluster.StatusDead)
		waitMemberStatus(t, lone, n, cluster.StatusDead)
	}
	// Let memberlist give up on the dead: it no longer gossips to them.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-time.After(50 * time.Millisecond): // waiting out GossipToTheDeadTime, not synchronising
		case <-t.Context().Done():
			return
		}
	}
	healAll(c)
	for _, n := range others {
		waitMemberStatus(t, n, lone, cluster.StatusAlive)
		waitMemberStatus(t, lone, n, cluster.StatusAlive)
	}
}
