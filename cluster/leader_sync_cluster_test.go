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

// The leader sends entries to the followers while its own append is still
// being synced, but counts towards an entry's quorum only once that sync
// is done: with the leader's disk stalled, an entry that only the leader
// and one follower hold is not committed, however long it waits; when the
// disk comes back it is. A single node commits only after its own sync.
func TestLeaderSync_CommitWaitsForLeaderDisk(t *testing.T) {
	for _, nodes := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d nodes", nodes), func(t *testing.T) {
			t.Parallel()
			c := testcluster.New(t, nodes)
			mustApplyNoop(t, c)
			leader := c.WaitLeader()
			var follower *testcluster.Node
			for _, n := range c.Running() {
				if n == leader {
					continue
				}
				if follower == nil {
					follower = n // keeps its link to the leader
					continue
				}
				cutOneWay(leader, n) // the third node is cut off: no quorum without the leader
				cutOneWay(n, leader)
			}
			leader.Faults.HoldLogSyncs()
			t.Cleanup(leader.Faults.ReleaseLogSyncs) // before the cluster stops
			before := leader.Cluster.Status().LastIndex
			res := make(chan error, 1)
			go func() {
				_, err := leader.Cluster.Apply(ctxT(t, 30*time.Second), broker.EncodeCommand(broker.CmdNoop, nil))
				res <- err
			}()
			if follower != nil {
				// the follower holds the entry (synced on its disk) ...
				testutil.Eventually(t, 10*time.Second, func() error {
					if got := follower.Cluster.Status().LastIndex; got <= before {
						return fmt.Errorf("follower last log index %d, want > %d", got, before)
					}
					return nil
				})
			}
			// ... and still it is not committed while the leader's sync is held
			select {
			case err := <-res:
				t.Fatalf("committed without the leader's sync (err %v)", err)
			case <-time.After(testutil.Scale(500 * time.Millisecond)):
			}
			if ci := leader.Cluster.Status().CommitIndex; ci > before {
				t.Fatalf("commit index %d passed %d without the leader's sync", ci, before)
			}
			leader.Faults.ReleaseLogSyncs()
			if err := <-res; err != nil {
				t.Fatalf("apply after the sync: %v", err)
			}
			healAll(c)
		})
	}
}

// A follower answers an AppendEntries only once the entries are on its
// disk, but takes the next AppendEntries meanwhile (its transport reads
// ahead and it writes before syncing), so one sync answers several:
// follower group commit. With both followers' disks stalled, two entries
// proposed one after the other both reach the followers' logs, neither is
// committed, and both are once one follower's disk comes back. The test
// fails if a follower answers before its sync (the entries commit early)
// or handles one AppendEntries at a time (the second never arrives).
func TestFollowerSync_AckWaitsForFollowerDisk(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3)
	mustApplyNoop(t, c)
	leader := c.WaitLeader()
	var followers []*testcluster.Node
	for _, n := range c.Running() {
		if n != leader {
			followers = append(followers, n)
		}
	}
	// Each follower has caught up and synced everything it holds, so its
	// answers have gone out and the leader's replicator for it pipelines
	// (before its first answer it sends one request at a time, and a
	// follower whose last answer waits for a held sync would never get
	// the next one).
	for _, f := range followers {
		testutil.Eventually(t, 10*time.Second, func() error {
			st := f.Cluster.Status()
			if want := leader.Cluster.Status().LastIndex; st.CommitIndex < want {
				return fmt.Errorf("follower %s commit index %d, want %d", f.ID, st.CommitIndex, want)
			}
			if st.LogSyncedIndex < st.LastIndex {
				return fmt.Errorf("follower %s synced log index %d, last %d", f.ID, st.LogSyncedIndex, st.LastIndex)
			}
			return nil
		})
	}
	for _, f := range followers {
		f.Faults.HoldLogSyncs()
		t.Cleanup(f.Faults.ReleaseLogSyncs) // before the cluster stops
	}
	before := leader.Cluster.Status().CommitIndex
	last := leader.Cluster.Status().LastIndex
	var proposals []*cluster.Proposal
	for round := range 2 {
		proposals = append(proposals, leader.Cluster.Propose(ctxT(t, 30*time.Second), broker.EncodeCommand(broker.CmdNoop, nil)))
		testutil.Eventually(t, 10*time.Second, func() error {
			if got := leader.Cluster.Status().LastIndex; got <= last {
				return fmt.Errorf("leader last log index %d, want > %d", got, last)
			}
			return nil
		})
		last = leader.Cluster.Status().LastIndex
		for _, f := range followers {
			// well below the transport's 10 s timeout, after which the
			// leader would resend on a new connection even to a follower
			// that does not read ahead
			testutil.Eventually(t, 4*time.Second, func() error {
				if got := f.Cluster.Status().LastIndex; got < last {
					return fmt.Errorf("round %d: follower %s last log index %d, want %d", round, f.ID, got, last)
				}
				return nil
			})
		}
	}
	if ci := leader.Cluster.Status().CommitIndex; ci != before {
		t.Fatalf("commit index moved %d -> %d while no follower's sync ran", before, ci)
	}
	followers[0].Faults.ReleaseLogSyncs()
	for i, p := range proposals {
		if _, err := p.Wait(); err != nil {
			t.Fatalf("proposal %d after one follower's sync: %v", i, err)
		}
	}
}
