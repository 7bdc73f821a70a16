package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/flotilla/flotilla/broker"
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
