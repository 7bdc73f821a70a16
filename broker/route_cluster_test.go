package broker_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/internal/testcluster"
	"github.com/flotilla/flotilla/internal/testutil"
)

// recorder counts deliveries per subject.
type recorder struct {
	mu  sync.Mutex
	got map[string]int
}

func (r *recorder) Deliver(_ *broker.Subscription, m *broker.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string]int{}
	}
	r.got[string(m.Subject)]++
}

func (r *recorder) count(subject string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[subject]
}

func mustSub(t *testing.T, b *broker.Broker, c broker.Subscriber, subject, queue string) {
	t.Helper()
	if err := b.Subscribe(&broker.Subscription{Subject: subject, Queue: queue, SID: subject + queue, ClientID: 1, Client: c}); err != nil {
		t.Fatal(err)
	}
}

func waitInterest(t *testing.T, b *broker.Broker, subject string, want bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := b.HasInterest([]byte(subject)); got != want {
			return fmt.Errorf("HasInterest(%s) = %v, want %v", subject, got, want)
		}
		return nil
	})
}

// TestCluster_CoreRouting runs the broker's routing over real cluster nodes
// (TCP links, gossip): brokers are attached after the nodes started, as a
// late wiring would do, so the initial sync relies on AttachMesh's
// broadcast.
func TestCluster_CoreRouting(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Parallel()
	c := testcluster.New(t, 3)
	bs := map[string]*broker.Broker{}
	for _, n := range c.Nodes() {
		b := broker.New(n.Log)
		n.Cluster.SetFrameHandler(b)
		b.AttachMesh(n.Cluster)
		bs[n.ID] = b
	}
	b1, b2, b3 := bs["n1"], bs["n2"], bs["n3"]

	// Plain: subscribe on n2, publish on n1, receive exactly once.
	r2, r3 := &recorder{}, &recorder{}
	mustSub(t, b2, r2, "orders.>", "")
	waitInterest(t, b1, "orders.new", true)
	if n := b1.Publish(&broker.Message{Subject: []byte("orders.new"), Payload: []byte("x")}); n != 1 {
		t.Fatalf("Publish = %d, want 1", n)
	}

	// Queue group over n2 and n3, plus a sentinel subject on each: frames
	// on one link arrive in order, so once a sentinel published after the
	// messages has arrived, every copy of them that was going to arrive
	// there has.
	mustSub(t, b2, r2, "work", "g")
	mustSub(t, b3, r3, "work", "g")
	mustSub(t, b2, r2, "sentinel", "")
	mustSub(t, b3, r3, "sentinel", "")
	// Interest frames from one node arrive in order too: once n1 sees each
	// node's last subscription, it has seen all of that node's.
	mustSub(t, b2, r2, "probe.n2", "")
	mustSub(t, b3, r3, "probe.n3", "")
	waitInterest(t, b1, "probe.n2", true)
	waitInterest(t, b1, "probe.n3", true)
	const msgs = 200
	for range msgs {
		if n := b1.Publish(&broker.Message{Subject: []byte("work")}); n != 1 {
			t.Fatalf("Publish(work) = %d, want 1", n)
		}
	}
	if n := b1.Publish(&broker.Message{Subject: []byte("sentinel")}); n != 2 {
		t.Fatalf("Publish(sentinel) = %d, want 2", n)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if r2.count("sentinel") != 1 || r3.count("sentinel") != 1 {
			return fmt.Errorf("sentinels: n2 %d, n3 %d", r2.count("sentinel"), r3.count("sentinel"))
		}
		return nil
	})
	if got := r2.count("orders.new"); got != 1 {
		t.Errorf("orders.new delivered %d times, want 1", got)
	}
	w2, w3 := r2.count("work"), r3.count("work")
	if w2+w3 != msgs || w2 == 0 || w3 == 0 {
		t.Errorf("queue deliveries n2=%d n3=%d, want %d in total, spread over both", w2, w3, msgs)
	}

	// A killed node's interest disappears from the others.
	mustSub(t, b3, r3, "only.n3", "")
	waitInterest(t, b1, "only.n3", true)
	c.Kill("n3")
	waitInterest(t, b1, "only.n3", false)
	waitInterest(t, b2, "only.n3", false)
	if n := b1.Publish(&broker.Message{Subject: []byte("only.n3")}); n != 0 {
		t.Errorf("Publish to a dead node's subject = %d, want 0", n)
	}

	// Restarted (with a fresh broker), it is routed to again: the others
	// marked it down and ignore what it sends until their link to it is
	// back up, then ask it for a full sync. (This also leaves the cluster
	// healthy for teardown, with no dead member being probed.)
	n3 := c.Restart("n3")
	b3 = broker.New(n3.Log)
	n3.Cluster.SetFrameHandler(b3)
	b3.AttachMesh(n3.Cluster)
	r3 = &recorder{}
	mustSub(t, b3, r3, "back.n3", "")
	waitInterest(t, b1, "back.n3", true)
	waitInterest(t, b2, "back.n3", true)
	if b1.HasInterest([]byte("only.n3")) {
		t.Error("the old incarnation's interest came back")
	}
	if n := b1.Publish(&broker.Message{Subject: []byte("back.n3")}); n != 1 {
		t.Errorf("Publish(back.n3) = %d, want 1", n)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := r3.count("back.n3"); got != 1 {
			return fmt.Errorf("back.n3 delivered %d times", got)
		}
		return nil
	})
	// And the restarted node routes to the others.
	if n := b3.Publish(&broker.Message{Subject: []byte("sentinel")}); n != 1 {
		t.Errorf("Publish(sentinel) from the restarted node = %d, want 1 (n2)", n)
	}
}
