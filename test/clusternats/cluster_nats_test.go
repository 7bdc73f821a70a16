package clusternats

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla/flotilla/internal/testcluster"
	"github.com/flotilla/flotilla/internal/testutil"
)

func mustConnect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.Name(t.Name()), nats.Timeout(testutil.Scale(5 * time.Second))}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func mustFlush(t *testing.T, nc *nats.Conn) {
	t.Helper()
	if err := nc.FlushTimeout(testutil.Scale(5 * time.Second)); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// waitInterest waits until every listed node routes subject somewhere
// (interest propagates between nodes asynchronously, as in NATS).
func waitInterest(t *testing.T, subject string, nodes ...*testcluster.Node) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, n := range nodes {
			if !n.Broker.HasInterest([]byte(subject)) {
				return fmt.Errorf("%s has no interest in %s yet", n.ID, subject)
			}
		}
		return nil
	})
}

func TestClusterNats_PublishOnOneNode_ReceivedOnEveryOther(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	n1, n2, n3 := c.Node(0), c.Node(1), c.Node(2)
	var subs []*nats.Subscription
	for _, n := range []*testcluster.Node{n2, n3} {
		nc := mustConnect(t, n.ClientURL)
		sub, err := nc.SubscribeSync("orders.*")
		if err != nil {
			t.Fatal(err)
		}
		mustFlush(t, nc)
		subs = append(subs, sub)
	}
	pub := mustConnect(t, n1.ClientURL)
	// n1 learns each node's interest separately: publish probes until both
	// subscribers get one, so that none of the counted messages can go out
	// while n1 knows of only one of them (core NATS drops those).
	testutil.Eventually(t, 10*time.Second, func() error {
		if err := pub.Publish("orders.probe", nil); err != nil {
			return err
		}
		mustFlush(t, pub)
		for i, sub := range subs {
			if m, err := sub.NextMsg(20 * time.Millisecond); err != nil || m.Subject != "orders.probe" {
				return fmt.Errorf("subscriber %d has no probe yet (%v)", i, err)
			}
		}
		return nil
	})
	const msgs = 100
	for i := range msgs {
		if err := pub.Publish("orders.new", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, pub)
	for i, sub := range subs {
		for j := range msgs {
			m, err := sub.NextMsg(testutil.Scale(5 * time.Second))
			for err == nil && m.Subject == "orders.probe" { // probes still queued
				m, err = sub.NextMsg(testutil.Scale(5 * time.Second))
			}
			if err != nil {
				t.Fatalf("subscriber %d message %d: %v", i, j, err)
			}
			if string(m.Data) != fmt.Sprint(j) {
				t.Fatalf("subscriber %d got %q at %d (order per publisher must hold)", i, m.Data, j)
			}
		}
		if m, err := sub.NextMsg(50 * time.Millisecond); err == nil {
			t.Fatalf("subscriber %d got a duplicate %q", i, m.Data)
		}
	}
}

func TestClusterNats_QueueGroup_ExactlyOnceAcrossNodes(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	const msgs = 600
	var mu sync.Mutex
	seen := map[string]int{}
	perNode := map[string]int{}
	done := make(chan struct{})
	total := 0
	for _, n := range c.Nodes() {
		nc := mustConnect(t, n.ClientURL)
		id := n.ID
		if _, err := nc.QueueSubscribe("jobs", "workers", func(m *nats.Msg) {
			mu.Lock()
			defer mu.Unlock()
			seen[string(m.Data)]++
			perNode[id]++
			if total++; total == msgs {
				close(done)
			}
		}); err != nil {
			t.Fatal(err)
		}
		mustFlush(t, nc)
	}
	// Every node must know the group's members on the other nodes.
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, n := range c.Nodes() {
			if !n.Broker.HasInterest([]byte("jobs")) {
				return fmt.Errorf("%s: no interest", n.ID)
			}
		}
		return nil
	})
	pub := mustConnect(t, c.Node(0).ClientURL)
	for i := range msgs {
		if err := pub.Publish("jobs", fmt.Appendf(nil, "job-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, pub)
	select {
	case <-done:
	case <-time.After(testutil.Scale(10 * time.Second)):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("queue group got %d of %d", total, msgs)
	}
	// Give duplicates a chance to show up before counting.
	mustFlush(t, pub)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != msgs || total != msgs {
		t.Fatalf("%d deliveries of %d distinct messages, want %d of %d", total, len(seen), msgs, msgs)
	}
	for _, n := range c.Nodes() {
		if perNode[n.ID] == 0 {
			t.Errorf("no member on %s got work: %v", n.ID, perNode)
		}
	}
}

func TestClusterNats_RequestReply_AcrossNodes(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	responder := mustConnect(t, c.Node(2).ClientURL)
	sub, err := responder.Subscribe("svc.echo", func(m *nats.Msg) { _ = m.Respond(append([]byte("echo:"), m.Data...)) })
	if err != nil {
		t.Fatal(err)
	}
	mustFlush(t, responder)
	waitInterest(t, "svc.echo", c.Node(0))
	for _, opts := range [][]nats.Option{nil, {nats.UseOldRequestStyle()}} {
		nc := mustConnect(t, c.Node(0).ClientURL, opts...)
		for i := range 20 {
			m, err := nc.Request("svc.echo", fmt.Appendf(nil, "%d", i), testutil.Scale(5*time.Second))
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if string(m.Data) != fmt.Sprintf("echo:%d", i) {
				t.Fatalf("reply %q", m.Data)
			}
		}
	}
	// No responder anywhere in the cluster: 503 no responders.
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, responder)
	requester := mustConnect(t, c.Node(0).ClientURL)
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := requester.Request("svc.echo", nil, testutil.Scale(2*time.Second))
		if !errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("request after unsubscribe: %v, want no responders", err)
		}
		return nil
	})
}

func TestClusterNats_ClientFailsOverThroughConnectURLs(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	leader := c.WaitLeader()
	// The client is given only the leader's URL; it learns the others from
	// connect_urls.
	reconnected := make(chan string, 4)
	nc := mustConnect(t, leader.ClientURL,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectHandler(func(nc *nats.Conn) { reconnected <- nc.ConnectedUrl() }))
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := len(nc.DiscoveredServers()); n != 2 {
			return fmt.Errorf("client discovered %v", nc.DiscoveredServers())
		}
		return nil
	})
	sub, err := nc.SubscribeSync("after.failover")
	if err != nil {
		t.Fatal(err)
	}
	mustFlush(t, nc)

	c.Kill(leader.ID)
	var url string
	select {
	case url = <-reconnected:
	case <-time.After(testutil.Scale(15 * time.Second)):
		t.Fatal("client did not reconnect")
	}
	if url == leader.ClientURL {
		t.Fatalf("reconnected to the killed node %s", url)
	}
	newLeader := c.WaitLeader()
	var survivor *testcluster.Node
	for _, n := range c.Running() {
		if n.ClientURL != url {
			survivor = n
		}
	}
	waitInterest(t, "after.failover", survivor)
	pub := mustConnect(t, survivor.ClientURL)
	if err := pub.Publish("after.failover", []byte("still here")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(testutil.Scale(5 * time.Second))
	if err != nil || string(m.Data) != "still here" {
		t.Fatalf("after failover: %v %v (leader now %s)", m, err, newLeader.ID)
	}
}
