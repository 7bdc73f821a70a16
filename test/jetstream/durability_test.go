package jetstream

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/internal/testcluster"
)

// ackLog records every acknowledged publish: sequence -> payload.
type ackLog struct {
	mu   sync.Mutex
	acks map[uint64]string
}

func (a *ackLog) add(t *testing.T, seq uint64, data string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if prev, ok := a.acks[seq]; ok && prev != data {
		t.Errorf("seq %d acked for %q and %q", seq, prev, data)
	}
	a.acks[seq] = data
}

// publishBurst publishes n messages (with Nats-Msg-Id, retried on error)
// and records the acks; kill, if set, runs after half of them.
func publishBurst(t *testing.T, js jetstream.JetStream, subject string, n int, log *ackLog, kill func()) {
	t.Helper()
	for i := range n {
		if i == n/2 && kill != nil {
			kill()
		}
		data := string(body(i))
		for attempt := 0; ; attempt++ {
			// Each attempt waits as long as a client's default API timeout
			// would; the retry carries the same Nats-Msg-Id.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ack, err := js.Publish(ctx, subject, []byte(data), jetstream.WithMsgID(data))
			cancel()
			if err == nil {
				log.add(t, ack.Sequence, data)
				break
			}
			if attempt > 200 {
				t.Fatalf("message %d never acked: %v", i, err)
			}
			time.Sleep(20 * time.Millisecond) // client retry pacing, as an application would
		}
	}
}

// assertAcked checks that every acknowledged message is on every running
// node at its acknowledged sequence.
func assertAcked(t *testing.T, c *testcluster.Cluster, stream string, log *ackLog) {
	t.Helper()
	assertReplicasEqual(t, c, stream)
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, n := range c.Running() {
		for seq, want := range log.acks {
			m, e := n.FSM.GetMsg(stream, broker.MsgGetRequest{Seq: seq})
			if e != nil || string(m.Data) != want {
				t.Fatalf("%s lost acked seq %d (%q): %v %v", n.ID, seq, want, m, e)
			}
		}
	}
}

func TestDurability_LeaderKilledMidBurst_NoAckedLoss(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	leader := c.WaitLeader()
	// The client sits on a follower that survives.
	_, js := connectJS(t, c.Followers()[0])
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "D1", Subjects: []string{"d1"}})
	log := &ackLog{acks: map[uint64]string{}}
	publishBurst(t, js, "d1", 400, log, func() { c.Kill(leader.ID) })
	if len(log.acks) != 400 {
		t.Fatalf("%d distinct acked sequences for 400 messages (dedup failed?)", len(log.acks))
	}
	assertAcked(t, c, "D1", log)
	c.Restart(leader.ID)
	assertAcked(t, c, "D1", log)
}

func TestDurability_AllNodesRestarted_NothingAckedLost(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	_, js := connectJS(t, follower(t, c))
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "D2", Subjects: []string{"d2.>"}})
	log := &ackLog{acks: map[uint64]string{}}
	publishBurst(t, js, "d2.x", 200, log, nil)
	for _, n := range c.Nodes() {
		c.Kill(n.ID) // all at once, no graceful step
	}
	for _, n := range c.Nodes() {
		c.Restart(n.ID)
	}
	c.WaitLeader()
	assertAcked(t, c, "D2", log)
	// And the stream takes writes again, continuing the sequence.
	_, js = connectJS(t, follower(t, c))
	ack, err := js.Publish(ctxT(t, 20*time.Second), "d2.y", []byte("after restart"))
	if err != nil || ack.Sequence != 201 {
		t.Fatalf("publish after restart: %+v %v", ack, err)
	}
}

func TestDurability_WipedNode_CatchesUp(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	_, js := connectJS(t, follower(t, c))
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "D3", Subjects: []string{"d3"}})
	log := &ackLog{acks: map[uint64]string{}}
	publishBurst(t, js, "d3", 100, log, nil)
	victim := c.Followers()[1]
	c.Kill(victim.ID)
	c.Wipe(victim.ID)
	publishBurst(t, js, "d3", 100, log, nil)
	c.RejoinEmpty(victim.ID)
	if _, e := waitStream(t, c.ByID(victim.ID), "D3"); e != nil {
		t.Fatal(e)
	}
	assertAcked(t, c, "D3", log)
}

// waitStream waits until a node's replica has the stream.
func waitStream(t *testing.T, n *testcluster.Node, name string) (*broker.StreamInfo, error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, e := n.FSM.StreamInfo(name)
		if e == nil {
			return info, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s never got stream %s: %v", n.ID, name, e)
		}
		time.Sleep(20 * time.Millisecond) // polling a replica
	}
}

// forcedSnapshotsOnly keeps a short log after each snapshot and takes
// snapshots only when a test forces them.
func forcedSnapshotsOnly() testcluster.Option {
	return testcluster.WithConfig(func(_ int, cfg *cluster.Config) {
		cfg.TrailingLogs = 5
		cfg.SnapshotThreshold = 1 << 30
		cfg.SnapshotInterval = time.Hour
	})
}

// A follower that fell behind the leader's compacted log catches up by
// installing a snapshot (the store file is shipped and swapped in).
func TestDurability_FarBehindFollower_InstallsSnapshot(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients(), forcedSnapshotsOnly())
	_, js := connectJS(t, follower(t, c))
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "D4", Subjects: []string{"d4"}})
	log := &ackLog{acks: map[uint64]string{}}
	publishBurst(t, js, "d4", 20, log, nil)
	lagger := c.Followers()[1]
	c.Kill(lagger.ID)
	publishBurst(t, js, "d4", 100, log, nil) // ~100 more entries the lagger misses
	leader := c.WaitLeader()
	c.ForceSnapshot(leader.ID)
	for _, n := range c.Running() {
		if n != leader {
			c.ForceSnapshot(n.ID)
		}
	}
	c.Restart(lagger.ID)
	assertAcked(t, c, "D4", log)
}

// The state file is synced lazily (storage/lazysync.go). After a machine
// crash a node cannot trust it: it discards it, restores the latest Raft
// snapshot and replays the log after it. Here every node loses power at
// once, after a snapshot and more writes on top of it, and comes back with
// every acknowledged message; the same for a lone follower whose peers
// compacted their logs past it meanwhile.
func TestDurability_PowerLoss_RebuildsFromSnapshotAndLog(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients(), forcedSnapshotsOnly())
	_, js := connectJS(t, follower(t, c))
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "PL", Subjects: []string{"pl"}})
	log := &ackLog{acks: map[uint64]string{}}
	publishBurst(t, js, "pl", 60, log, nil)
	for _, n := range c.Running() {
		c.ForceSnapshot(n.ID)
	}
	publishBurst(t, js, "pl", 60, log, nil) // in the log only, after the snapshot
	for _, n := range c.Nodes() {
		c.PowerLoss(n.ID)
	}
	for _, n := range c.Nodes() {
		c.Restart(n.ID)
	}
	c.WaitLeader()
	assertAcked(t, c, "PL", log)

	victim := c.Followers()[0]
	c.PowerLoss(victim.ID)
	_, js = connectJS(t, follower(t, c))
	publishBurst(t, js, "pl", 40, log, nil)
	for _, n := range c.Running() {
		c.ForceSnapshot(n.ID)
	}
	c.Restart(victim.ID)
	assertAcked(t, c, "PL", log)
}
