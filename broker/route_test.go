package broker

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// fakeNet connects in-process Brokers with one-directional, ordered,
// asynchronous links, like cluster's peer links: a frame sent on a link is
// copied, queued and handed to the receiver's HandleFrame on the link's own
// goroutine. The test drives link state and PeerUp/PeerDown, and waits for
// every queued frame to be handled with flush (no sleeping).
type fakeNet struct {
	t       *testing.T
	mu      sync.Mutex
	cond    *sync.Cond
	pending int // frames queued or being handled
	stopped bool
	brokers map[string]*Broker
	links   map[[2]string]*fakeLink
	wg      sync.WaitGroup
}

type fakeFrame struct {
	kind byte
	body []byte
}

// fakeLink is the link from one broker to another. Guarded by fakeNet.mu.
type fakeLink struct {
	from, to string
	up       bool // connected: frames are accepted
	full     bool // connected but refusing frames, like a full buffer
	queue    []fakeFrame
	sent     map[byte]int // frames accepted, by kind
}

var errFakeLinkDown = errors.New("fake link down")

// fakeMesh is one broker's view of a fakeNet.
type fakeMesh struct {
	net  *fakeNet
	self string
	// SendFunc, when set, replaces Send (for benchmarks).
	SendFunc func(peer string, kind byte, body []byte) error
}

var _ Mesh = (*fakeMesh)(nil)

func (m *fakeMesh) Send(peer string, kind byte, body []byte) error {
	if m.SendFunc != nil {
		return m.SendFunc(peer, kind, body)
	}
	return m.net.send(m.self, peer, kind, body)
}

func (m *fakeMesh) Broadcast(kind byte, body []byte) {
	if m.net == nil {
		return
	}
	m.net.mu.Lock()
	var peers []string
	for k, l := range m.net.links {
		if k[0] == m.self && l.up {
			peers = append(peers, k[1])
		}
	}
	m.net.mu.Unlock()
	for _, p := range peers {
		_ = m.net.send(m.self, p, kind, body)
	}
}

// newTestNet starts one Broker per id, each with a fakeMesh attached, and
// links every pair (all links down until linkUp).
func newTestNet(t *testing.T, ids ...string) *fakeNet {
	t.Helper()
	n := &fakeNet{t: t, brokers: map[string]*Broker{}, links: map[[2]string]*fakeLink{}}
	n.cond = sync.NewCond(&n.mu)
	for _, id := range ids {
		n.brokers[id] = New(zaptest.NewLogger(t).Named(id))
	}
	for _, a := range ids {
		for _, b := range ids {
			if a == b {
				continue
			}
			l := &fakeLink{from: a, to: b, sent: map[byte]int{}}
			n.links[[2]string{a, b}] = l
			n.wg.Add(1)
			go n.run(l)
		}
	}
	t.Cleanup(func() {
		n.mu.Lock()
		n.stopped = true
		n.cond.Broadcast()
		n.mu.Unlock()
		n.wg.Wait()
	})
	return n
}

// newTestCluster returns a fakeNet of brokers n1..nN, attached and fully
// connected, with the initial interest syncs done.
func newTestCluster(t *testing.T, size int) (*fakeNet, []*Broker) {
	t.Helper()
	var ids []string
	for i := range size {
		ids = append(ids, fmt.Sprintf("n%d", i+1))
	}
	n := newTestNet(t, ids...)
	var bs []*Broker
	for _, id := range ids {
		n.attach(id)
		bs = append(bs, n.brokers[id])
	}
	for _, a := range ids {
		for _, b := range ids {
			if a != b {
				n.linkUp(a, b)
			}
		}
	}
	n.flush()
	return n, bs
}

func (n *fakeNet) attach(id string) {
	n.brokers[id].AttachMesh(&fakeMesh{net: n, self: id})
}

func (n *fakeNet) send(from, to string, kind byte, body []byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.links[[2]string{from, to}]
	if l == nil || !l.up || l.full {
		return fmt.Errorf("send %s->%s: %w", from, to, errFakeLinkDown)
	}
	l.queue = append(l.queue, fakeFrame{kind: kind, body: bytes.Clone(body)})
	l.sent[kind]++
	n.pending++
	n.cond.Broadcast()
	return nil
}

// run hands the frames of link l to its receiver, in order.
func (n *fakeNet) run(l *fakeLink) {
	defer n.wg.Done()
	to := n.brokers[l.to]
	for {
		n.mu.Lock()
		for len(l.queue) == 0 && !n.stopped {
			n.cond.Wait()
		}
		if n.stopped {
			n.mu.Unlock()
			return
		}
		f := l.queue[0]
		l.queue = l.queue[1:]
		n.mu.Unlock()

		to.HandleFrame(l.from, f.kind, f.body)

		n.mu.Lock()
		n.pending--
		n.cond.Broadcast()
		n.mu.Unlock()
	}
}

// flush waits until every frame sent so far, and every frame those caused,
// has been handled.
func (n *fakeNet) flush() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for n.pending > 0 {
		n.cond.Wait()
	}
}

// linkUp connects from->to and runs from's PeerUp, as cluster does.
func (n *fakeNet) linkUp(from, to string) {
	n.mu.Lock()
	l := n.links[[2]string{from, to}]
	l.up, l.full = true, false
	n.mu.Unlock()
	n.brokers[from].PeerUp(to)
}

// linkDown disconnects from->to; frames still queued on it are lost.
func (n *fakeNet) linkDown(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.links[[2]string{from, to}]
	l.up = false
	n.pending -= len(l.queue)
	l.queue = nil
	n.cond.Broadcast()
}

// setFull makes from->to refuse frames while staying connected.
func (n *fakeNet) setFull(from, to string, full bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.links[[2]string{from, to}].full = full
}

// sent returns how many frames of kind from->to carried.
func (n *fakeNet) sent(from, to string, kind byte) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.links[[2]string{from, to}].sent[kind]
}

// remoteInterest returns b's view of peer's interest: weight by
// "subject queue".
func remoteInterest(b *Broker, peer string) map[string]uint32 {
	b.rt.rmu.Lock()
	defer b.rt.rmu.Unlock()
	got := map[string]uint32{}
	if p := b.rt.remote[peer]; p != nil {
		for k, sub := range p.entries {
			got[k.subject+" "+k.queue] = sub.Client.(*remoteSub).weight.Load()
		}
	}
	return got
}

// localInterest returns b's own interest as its peers should see it.
func localInterest(b *Broker) map[string]uint32 {
	b.rt.imu.Lock()
	defer b.rt.imu.Unlock()
	got := map[string]uint32{}
	for k, n := range b.rt.local {
		got[k.subject+" "+k.queue] = interestWeight(k, n)
	}
	return got
}

func hasInterest(b *Broker, subject string) bool { return b.HasInterest([]byte(subject)) }

func TestRoute_PlainFanOut(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 3)
	c1, c2, c3 := &fakeSubscriber{}, &fakeSubscriber{}, &fakeSubscriber{}
	mustSubscribe(t, bs[0], c1, 1, "orders.new", "", "a")
	mustSubscribe(t, bs[1], c2, 2, "orders.new", "", "b")
	// Two patterns on one node: still one frame to that node.
	mustSubscribe(t, bs[2], c3, 3, "orders.*", "", "c")
	mustSubscribe(t, bs[2], c3, 3, "orders.>", "", "d")
	net.flush()

	if n := bs[0].Publish(newMsg("orders.new")); n != 3 {
		t.Errorf("Publish = %d, want 3 (local + two nodes)", n)
	}
	net.flush()
	for _, tt := range []struct {
		c    *fakeSubscriber
		want []string
	}{{c1, []string{"a"}}, {c2, []string{"b"}}, {c3, []string{"c", "d"}}} {
		if got := tt.c.sids(); !slices.Equal(got, tt.want) {
			t.Errorf("delivered to %v, want %v", got, tt.want)
		}
	}
	for _, to := range []string{"n2", "n3"} {
		if got := net.sent("n1", to, kindRouteMsg); got != 1 {
			t.Errorf("message frames n1->%s = %d, want 1", to, got)
		}
	}
}

func TestRoute_WildcardInterest(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 3)
	c2, c3 := &fakeSubscriber{}, &fakeSubscriber{}
	mustSubscribe(t, bs[1], c2, 2, "a.*.c", "", "star")
	mustSubscribe(t, bs[2], c3, 3, "a.>", "", "tail")
	net.flush()

	tests := []struct {
		subject        string
		want2, want3   []string
		wantN, frames2 int
	}{
		{"a.b.c", []string{"star"}, []string{"tail"}, 2, 1},
		{"a.b", nil, []string{"tail"}, 1, 1},
		{"a.b.c.d", nil, []string{"tail"}, 1, 1},
		{"b.b.c", nil, nil, 0, 1},
	}
	for _, tt := range tests {
		if n := bs[0].Publish(newMsg(tt.subject)); n != tt.wantN {
			t.Errorf("Publish(%s) = %d, want %d", tt.subject, n, tt.wantN)
		}
		net.flush()
		if got := c2.sids(); !slices.Equal(got, tt.want2) {
			t.Errorf("%s: n2 got %v, want %v", tt.subject, got, tt.want2)
		}
		if got := c3.sids(); !slices.Equal(got, tt.want3) {
			t.Errorf("%s: n3 got %v, want %v", tt.subject, got, tt.want3)
		}
		// Nothing is sent to a node without matching interest.
		if got := net.sent("n1", "n2", kindRouteMsg); got != tt.frames2 {
			t.Errorf("%s: message frames to n2 = %d, want %d", tt.subject, got, tt.frames2)
		}
	}
}

func TestRoute_QueueGroup_ExactlyOnceCluster(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 3)
	workers := &fakeSubscriber{}
	plain := &fakeSubscriber{}
	// Members 1 + 2 + 1 on three nodes, over two patterns on n2; one plain
	// subscriber on n3.
	mustSubscribe(t, bs[0], workers, 1, "jobs.*", "w", "w1")
	mustSubscribe(t, bs[1], workers, 2, "jobs.*", "w", "w2")
	mustSubscribe(t, bs[1], workers, 3, "jobs.>", "w", "w3")
	mustSubscribe(t, bs[2], workers, 4, "jobs.*", "w", "w4")
	mustSubscribe(t, bs[2], plain, 5, "jobs.>", "", "p")
	net.flush()
	if got := remoteInterest(bs[0], "n2"); got["jobs.* w"] != 1 || got["jobs.> w"] != 1 {
		t.Fatalf("n1's view of n2 = %v", got)
	}

	// Publish concurrently from every node: each message must reach exactly
	// one worker and the plain subscriber.
	const perNode = 1200
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Go(func() {
			for j := range perNode {
				if n := b.Publish(newMsg(fmt.Sprintf("jobs.n%d-%d", i+1, j))); n != 2 {
					t.Errorf("Publish = %d, want 2 (one worker + plain)", n)
					return
				}
			}
		})
	}
	wg.Wait()
	net.flush()

	perSubject := map[string]int{}
	perMember := map[string]int{}
	for _, d := range workers.deliveries() {
		perSubject[d.subject]++
		perMember[d.sid]++
	}
	if len(perSubject) != 3*perNode {
		t.Errorf("%d distinct messages reached the group, want %d", len(perSubject), 3*perNode)
	}
	for s, n := range perSubject {
		if n != 1 {
			t.Errorf("%s delivered to %d workers, want 1", s, n)
		}
	}
	if got := len(plain.deliveries()); got != 3*perNode {
		t.Errorf("plain subscriber got %d, want %d", got, 3*perNode)
	}
	// Members are chosen uniformly cluster-wide: each of 4 expects 900.
	for _, sid := range []string{"w1", "w2", "w3", "w4"} {
		if perMember[sid] < 3*perNode/4/2 {
			t.Errorf("member %s got %d of %d; spread %v is uneven", sid, perMember[sid], 3*perNode, perMember)
		}
	}
}

func TestRoute_QueueGroup_WeightFollowsMembers(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 2)
	c := &fakeSubscriber{}
	var subs []*Subscription
	for i := range 3 {
		subs = append(subs, mustSubscribe(t, bs[1], c, uint64(i), "q", "g", fmt.Sprint(i)))
	}
	net.flush()
	if got := remoteInterest(bs[0], "n2")["q g"]; got != 3 {
		t.Fatalf("weight = %d, want 3", got)
	}
	bs[1].Unsubscribe(subs[0])
	net.flush()
	if got := remoteInterest(bs[0], "n2")["q g"]; got != 2 {
		t.Fatalf("weight after one left = %d, want 2", got)
	}
	bs[1].Unsubscribe(subs[1])
	bs[1].Unsubscribe(subs[2])
	net.flush()
	if got := remoteInterest(bs[0], "n2"); len(got) != 0 {
		t.Fatalf("interest after all left = %v, want none", got)
	}
}

func TestRoute_NoResponders(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 3)
	c := &fakeSubscriber{}
	q := mustSubscribe(t, bs[1], c, 2, "svc", "workers", "q")
	p := mustSubscribe(t, bs[2], c, 3, "svc.>", "", "p")
	net.flush()

	if n := bs[0].Publish(newMsg("nothing")); n != 0 {
		t.Errorf("Publish(nothing) = %d, want 0", n)
	}
	if n := bs[0].Publish(newMsg("svc")); n != 1 {
		t.Errorf("Publish(svc) = %d, want 1 (remote queue member)", n)
	}
	if n := bs[0].Publish(newMsg("svc.x")); n != 1 {
		t.Errorf("Publish(svc.x) = %d, want 1 (remote plain)", n)
	}
	bs[1].Unsubscribe(q)
	bs[2].Unsubscribe(p)
	net.flush()
	for _, s := range []string{"svc", "svc.x"} {
		if n := bs[0].Publish(newMsg(s)); n != 0 {
			t.Errorf("after unsubscribe Publish(%s) = %d, want 0", s, n)
		}
	}
}

func TestRoute_InterestRemovedWithLastSub(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 2)
	c := &fakeSubscriber{}
	a := mustSubscribe(t, bs[1], c, 1, "x", "", "a")
	b := mustSubscribe(t, bs[1], c, 2, "x", "", "b")
	net.flush()
	if !hasInterest(bs[0], "x") {
		t.Fatal("no interest in x after subscribe")
	}
	frames := net.sent("n2", "n1", kindRouteInterest)
	bs[1].Unsubscribe(a)
	net.flush()
	if !hasInterest(bs[0], "x") {
		t.Error("interest gone while one subscription remains")
	}
	if got := net.sent("n2", "n1", kindRouteInterest); got != frames {
		t.Errorf("removing a second plain subscription sent %d interest frames, want none", got-frames)
	}
	bs[1].Unsubscribe(b)
	bs[1].Unsubscribe(b) // harmless, and not counted twice
	net.flush()
	if hasInterest(bs[0], "x") {
		t.Error("interest remains after the last subscription left")
	}
	if got := localInterest(bs[1]); len(got) != 0 {
		t.Errorf("local interest = %v, want none", got)
	}
}

func TestRoute_PeerDown_DropsInterest(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 3)
	c := &fakeSubscriber{}
	mustSubscribe(t, bs[1], c, 1, "x", "", "x")
	net.flush()
	if !hasInterest(bs[0], "x") {
		t.Fatal("no interest in x")
	}
	bs[0].PeerDown("n2")
	if hasInterest(bs[0], "x") {
		t.Error("interest of a down peer remains")
	}
	if n := bs[0].Publish(newMsg("x")); n != 0 {
		t.Errorf("Publish = %d after PeerDown, want 0", n)
	}
	// Frames still arriving from the down peer are ignored...
	mustSubscribe(t, bs[1], c, 1, "y", "", "y")
	net.flush()
	if hasInterest(bs[0], "y") {
		t.Error("interest from a down peer was accepted")
	}
	// ...until it comes back: our link to it up again asks it for a sync.
	bs[0].PeerUp("n2")
	net.flush()
	for _, s := range []string{"x", "y"} {
		if !hasInterest(bs[0], s) {
			t.Errorf("no interest in %s after the peer came back", s)
		}
	}
	if !hasInterest(bs[2], "y") {
		t.Error("a third node missed the interest")
	}
}

func TestRoute_ResetOnPeerUp_ReplacesStaleState(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 2)
	c := &fakeSubscriber{}
	old := mustSubscribe(t, bs[1], c, 1, "old", "", "old")
	mustSubscribe(t, bs[1], c, 1, "q", "g", "q1")
	net.flush()
	if !hasInterest(bs[0], "old") {
		t.Fatal("no interest in old")
	}
	// n2's link to n1 breaks; changes meanwhile cannot be sent.
	net.linkDown("n2", "n1")
	bs[1].Unsubscribe(old)
	mustSubscribe(t, bs[1], c, 1, "new", "", "new")
	mustSubscribe(t, bs[1], c, 1, "q", "g", "q2")
	net.flush()
	if !hasInterest(bs[0], "old") || hasInterest(bs[0], "new") {
		t.Fatal("interest changed while the link was down")
	}
	net.linkUp("n2", "n1")
	net.flush()
	want := map[string]uint32{"new ": 1, "q g": 2}
	if got := remoteInterest(bs[0], "n2"); !maps.Equal(got, want) {
		t.Errorf("after reconnect n1 sees %v, want %v", got, want)
	}
}

func TestRoute_DroppedInterestFrame_Resyncs(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 2)
	c := &fakeSubscriber{}
	// The link stays up but refuses a frame (a full buffer): no PeerUp
	// will follow, so the next frame that goes through brings a full sync.
	net.setFull("n2", "n1", true)
	mustSubscribe(t, bs[1], c, 1, "a", "", "a")
	net.setFull("n2", "n1", false)
	net.flush()
	if hasInterest(bs[0], "a") {
		t.Fatal("a dropped frame arrived")
	}
	mustSubscribe(t, bs[1], c, 1, "b", "", "b")
	net.flush()
	for _, s := range []string{"a", "b"} {
		if !hasInterest(bs[0], s) {
			t.Errorf("no interest in %s after resync", s)
		}
	}
}

func TestRoute_NoReforward(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 3)
	c := &fakeSubscriber{}
	mustSubscribe(t, bs[1], c, 2, "x", "", "2")
	mustSubscribe(t, bs[2], c, 3, "x", "", "3")
	mustSubscribe(t, bs[2], c, 4, "x", "g", "g3")
	net.flush()
	bs[0].Publish(newMsg("x"))
	net.flush()
	if got := c.sids(); !slices.Equal(got, []string{"2", "3", "g3"}) {
		t.Errorf("delivered to %v", got)
	}
	for _, link := range [][2]string{{"n2", "n1"}, {"n2", "n3"}, {"n3", "n1"}, {"n3", "n2"}} {
		if got := net.sent(link[0], link[1], kindRouteMsg); got != 0 {
			t.Errorf("%s forwarded %d message frames to %s, want 0", link[0], got, link[1])
		}
	}
}

func TestRoute_EchoIsLocal(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 2)
	self, remote := &fakeSubscriber{}, &fakeSubscriber{}
	// Client 7 on n1 publishes with echo off. Client ids are per node, so
	// n2's client 7 is someone else and must get the message.
	mustSubscribe(t, bs[0], self, 7, "chat", "", "self")
	mustSubscribe(t, bs[0], self, 7, "chat", "g", "self-g")
	mustSubscribe(t, bs[1], remote, 7, "chat", "", "remote")
	mustSubscribe(t, bs[1], remote, 7, "chat", "g", "remote-g")
	net.flush()
	for range 50 {
		m := newMsg("chat")
		m.Origin, m.NoEcho = 7, true
		// The group's local member is the publisher's: n2's member takes
		// every message, in the same frame as the plain copy.
		if n := bs[0].Publish(m); n != 2 {
			t.Fatalf("Publish = %d, want 2", n)
		}
	}
	net.flush()
	if got := self.sids(); len(got) != 0 {
		t.Errorf("publisher got its own messages: %v", got)
	}
	got := remote.sids()
	if len(got) != 100 || strings.Count(strings.Join(got, ","), "remote-g") != 50 {
		t.Errorf("remote got %d deliveries %v, want 50 plain + 50 queue", len(got), got)
	}
}

func TestRoute_RequestReply_AcrossNodes(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 3)
	// A responder on n2 answers each request through n2's broker.
	responder := &fakeSubscriber{}
	responder.DeliverFunc = func(_ *Subscription, m *Message) {
		reply := &Message{Subject: bytes.Clone(m.Reply), Payload: append([]byte("re:"), m.Payload...)}
		bs[1].Publish(reply)
	}
	mustSubscribe(t, bs[1], responder, 1, "svc.echo", "workers", "r")
	net.flush()

	// Old-style request: a fresh inbox with UNSUB 1, and the publish right
	// after, without waiting: the interest frame travels on the same link
	// ahead of the request, so the reply finds its way back.
	var got []string
	var mu sync.Mutex
	inbox := &fakeSubscriber{DeliverFunc: func(_ *Subscription, m *Message) {
		mu.Lock()
		got = append(got, string(m.Payload))
		mu.Unlock()
	}}
	for i := range 20 {
		subject := fmt.Sprintf("_INBOX.req%d", i)
		sub := mustSubscribe(t, bs[0], inbox, 9, subject, "", "inbox")
		sub.SetMax(1)
		req := &Message{Subject: []byte("svc.echo"), Reply: []byte(subject), Payload: []byte(fmt.Sprint(i))}
		if n := bs[0].Publish(req); n != 1 {
			t.Fatalf("request %d: Publish = %d, want 1", i, n)
		}
	}
	net.flush()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 20 {
		t.Fatalf("got %d replies %v, want 20", len(got), got)
	}
	// Every inbox auto-unsubscribed: no interest left anywhere.
	for _, b := range bs {
		if hasInterest(b, "_INBOX.req3") {
			t.Error("inbox interest remains after its one reply")
		}
	}
}

func TestRoute_LateAttach(t *testing.T) {
	t.Parallel()
	// Links come up before any broker has a mesh, and without PeerUp (the
	// cluster node started before the frame handler was set).
	net := newTestNet(t, "n1", "n2", "n3")
	c := &fakeSubscriber{}
	for id, b := range net.brokers {
		mustSubscribe(t, b, c, 1, "before."+id, "", id)
	}
	net.mu.Lock()
	for _, l := range net.links {
		l.up = true
	}
	net.mu.Unlock()
	for _, id := range []string{"n1", "n2", "n3"} {
		net.attach(id)
		net.flush()
	}
	for id, b := range net.brokers {
		for other := range net.brokers {
			if !hasInterest(b, "before."+other) {
				t.Errorf("%s has no interest in before.%s", id, other)
			}
		}
	}
	// Changes after attaching reach everyone.
	mustSubscribe(t, net.brokers["n3"], c, 1, "after", "", "after")
	net.flush()
	for id, b := range net.brokers {
		if !hasInterest(b, "after") {
			t.Errorf("%s has no interest in after", id)
		}
	}
}

func TestRoute_SendFailure_QueueFallsBackToLocal(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 2)
	local, remote := &fakeSubscriber{}, &fakeSubscriber{}
	mustSubscribe(t, bs[0], local, 1, "q", "g", "local")
	mustSubscribe(t, bs[1], remote, 2, "q", "g", "remote")
	net.flush()
	net.setFull("n1", "n2", true)
	for range 200 {
		if n := bs[0].Publish(newMsg("q")); n != 1 {
			t.Fatalf("Publish = %d, want 1", n)
		}
	}
	if got := len(local.deliveries()); got != 200 {
		t.Errorf("local member got %d, want all 200", got)
	}
}

func TestRoute_MessageFromPeer_HasNoPublisher(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 2)
	var got []Message
	var mu sync.Mutex
	c := &fakeSubscriber{DeliverFunc: func(_ *Subscription, m *Message) {
		mu.Lock()
		got = append(got, Message{Subject: bytes.Clone(m.Subject), Reply: bytes.Clone(m.Reply),
			Header: bytes.Clone(m.Header), Payload: bytes.Clone(m.Payload), Publisher: m.Publisher, NoEcho: m.NoEcho})
		mu.Unlock()
	}}
	mustSubscribe(t, bs[1], c, 1, "h", "", "h")
	net.flush()
	hdr := []byte("NATS/1.0\r\nA: b\r\n\r\n")
	bs[0].Publish(&Message{Subject: []byte("h"), Reply: []byte("r"), Header: hdr, Payload: []byte("p"),
		Origin: 1, NoEcho: true, Publisher: stallFunc(func(<-chan struct{}) {})})
	net.flush()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("got %d deliveries, want 1", len(got))
	}
	m := got[0]
	if string(m.Subject) != "h" || string(m.Reply) != "r" || !bytes.Equal(m.Header, hdr) || string(m.Payload) != "p" {
		t.Errorf("delivered %q %q %q %q", m.Subject, m.Reply, m.Header, m.Payload)
	}
	if m.Publisher != nil || m.NoEcho {
		t.Errorf("message from a peer has Publisher %v NoEcho %v, want nil and false", m.Publisher, m.NoEcho)
	}
}

func TestRoute_ReceivedQueueWithoutMembers_Dropped(t *testing.T) {
	t.Parallel()
	_, bs := newTestCluster(t, 2)
	c := &fakeSubscriber{}
	mustSubscribe(t, bs[1], c, 1, "s", "", "plain")
	mustSubscribe(t, bs[1], c, 1, "s", "other", "other")
	// The sender picked this node for group "gone", whose last member left
	// meanwhile: plain subscribers still get the message, no group does
	// (not even another one: only the listed groups are served here).
	bs[1].HandleFrame("n1", kindRouteMsg, encodeRouteMsg(newMsg("s"), "gone"))
	if got := c.sids(); !slices.Equal(got, []string{"plain"}) {
		t.Errorf("delivered to %v, want [plain]", got)
	}
}

type stallFunc func(<-chan struct{})

func (f stallFunc) Stall(ch <-chan struct{}) { f(ch) }

func TestRoute_Garbage_Ignored(t *testing.T) {
	t.Parallel()
	_, bs := newTestCluster(t, 2)
	for _, body := range [][]byte{nil, {1}, {1, 0, 200}, {9, 9, 9}} {
		bs[0].HandleFrame("n2", kindRouteInterest, body)
		bs[0].HandleFrame("n2", kindRouteMsg, body)
		bs[0].HandleFrame("n2", 99, body)
	}
	// Invalid subjects in well-formed frames are skipped, too.
	f := appendInterestHeader(nil, 0)
	f = appendInterestOp(f, "a..b", "", 1)
	f = appendInterestOp(f, "ok", "bad queue", 1)
	bs[0].HandleFrame("n2", kindRouteInterest, f)
	if got := remoteInterest(bs[0], "n2"); len(got) != 0 {
		t.Errorf("garbage made interest %v", got)
	}
}

// Subscriptions churn on one node while its link flaps and another node
// publishes: once things settle, the other node's view equals the churning
// node's interest exactly.
func TestRoute_ConcurrentChurn_Converges(t *testing.T) {
	t.Parallel()
	net, bs := newTestCluster(t, 3)
	c := &fakeSubscriber{}
	subjects := []string{"a", "a.*", "a.>", "b", "c.d"}
	queues := []string{"", "", "g", "h"}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			var mine []*Subscription
			for i := range 300 {
				if len(mine) > 0 && rand.IntN(2) == 0 {
					j := rand.IntN(len(mine))
					bs[1].Unsubscribe(mine[j])
					mine = slices.Delete(mine, j, j+1)
					continue
				}
				sub := &Subscription{Subject: subjects[rand.IntN(len(subjects))], Queue: queues[rand.IntN(len(queues))],
					SID: fmt.Sprint(w, i), ClientID: uint64(w), Client: c}
				if err := bs[1].Subscribe(sub); err != nil {
					t.Error(err)
					return
				}
				mine = append(mine, sub)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			net.linkDown("n2", "n1")
			net.linkUp("n2", "n1")
		}
	})
	wg.Go(func() {
		for range 500 {
			bs[0].Publish(newMsg("a.x"))
		}
	})
	wg.Wait()
	net.flush()
	want := localInterest(bs[1])
	for _, b := range []*Broker{bs[0], bs[2]} {
		if got := remoteInterest(b, "n2"); !maps.Equal(got, want) {
			t.Errorf("view of n2 = %v, want %v", got, want)
		}
	}
}

// discardMesh accepts and drops every frame.
func discardMesh() *fakeMesh {
	return &fakeMesh{SendFunc: func(string, byte, []byte) error { return nil }}
}

// newBenchBroker returns a broker with two peers whose interest is given
// as (subject, queue, weight) ops, and a mesh that discards frames.
func newBenchBroker(tb testing.TB, ops ...interestOp) *Broker {
	b := New(zap.NewNop())
	b.AttachMesh(discardMesh())
	for _, peer := range []string{"n2", "n3"} {
		f := appendInterestHeader(nil, interestReset|interestEnd)
		for _, op := range ops {
			f = appendInterestOp(f, string(op.Subject), string(op.Queue), op.Weight)
		}
		b.HandleFrame(peer, kindRouteInterest, f)
	}
	return b
}

func TestRoute_Publish_NoAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("the race detector makes sync.Pool drop items on purpose")
	}
	b := newBenchBroker(t,
		interestOp{Subject: []byte("bench.>"), Weight: 1},
		interestOp{Subject: []byte("bench.*"), Queue: []byte("g"), Weight: 2})
	if err := b.Subscribe(&Subscription{Subject: "bench.x", Queue: "g", SID: "l", Client: discardSubscriber{}}); err != nil {
		t.Fatal(err)
	}
	m := &Message{Subject: []byte("bench.x"), Payload: make([]byte, 128)}
	if allocs := testing.AllocsPerRun(500, func() { b.Publish(m) }); allocs > 0 {
		t.Errorf("Publish with remote interest allocates %.1f times, want 0", allocs)
	}

	// A frame that names the queue group, so the receive side delivers to
	// plain and queue subscriptions.
	body := encodeRouteMsg(m, "g")
	if allocs := testing.AllocsPerRun(500, func() { b.HandleFrame("n2", kindRouteMsg, body) }); allocs > 0 {
		t.Errorf("HandleFrame(message) allocates %.1f times, want 0", allocs)
	}
}

func BenchmarkPublish_RemotePlain(b *testing.B) {
	br := newBenchBroker(b, interestOp{Subject: []byte("bench.>"), Weight: 1})
	m := &Message{Subject: []byte("bench.x"), Payload: make([]byte, 128)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			br.Publish(m)
		}
	})
}

// A PubAck on a cluster: the peers have interest, but not in this
// subject, which only a local inbox reads.
func BenchmarkPublish_PeersWithoutInterest(b *testing.B) {
	br := newBenchBroker(b, interestOp{Subject: []byte("other.>"), Weight: 1})
	if err := br.Subscribe(&Subscription{Subject: "_INBOX.abc.*", SID: "1", Client: discardSubscriber{}}); err != nil {
		b.Fatal(err)
	}
	m := &Message{Subject: []byte("_INBOX.abc.1"), Payload: make([]byte, 32), Once: true}
	b.ReportAllocs()
	for b.Loop() {
		br.Publish(m)
	}
}

func BenchmarkPublish_RemoteQueue(b *testing.B) {
	br := newBenchBroker(b, interestOp{Subject: []byte("bench.*"), Queue: []byte("g"), Weight: 3})
	sub := &Subscription{Subject: "bench.x", Queue: "g", SID: "1", Client: discardSubscriber{}}
	if err := br.Subscribe(sub); err != nil {
		b.Fatal(err)
	}
	m := &Message{Subject: []byte("bench.x"), Payload: make([]byte, 128)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			br.Publish(m)
		}
	})
}

func BenchmarkPublish_NoRemoteInterest(b *testing.B) {
	br := newBenchBroker(b, interestOp{Subject: []byte("other.>"), Weight: 1})
	sub := &Subscription{Subject: "bench.x", SID: "1", Client: discardSubscriber{}}
	if err := br.Subscribe(sub); err != nil {
		b.Fatal(err)
	}
	m := &Message{Subject: []byte("bench.x"), Payload: make([]byte, 128)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			br.Publish(m)
		}
	})
}

// BenchmarkPublish_SingleNode is the baseline without a mesh.
func BenchmarkPublish_SingleNode(b *testing.B) {
	br := New(zap.NewNop())
	sub := &Subscription{Subject: "bench.x", SID: "1", Client: discardSubscriber{}}
	if err := br.Subscribe(sub); err != nil {
		b.Fatal(err)
	}
	m := &Message{Subject: []byte("bench.x"), Payload: make([]byte, 128)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			br.Publish(m)
		}
	})
}

func BenchmarkHandleFrame_Msg(b *testing.B) {
	br := newBenchBroker(b)
	sub := &Subscription{Subject: "bench.x", SID: "1", Client: discardSubscriber{}}
	if err := br.Subscribe(sub); err != nil {
		b.Fatal(err)
	}
	body := encodeRouteMsg(&Message{Subject: []byte("bench.x"), Payload: make([]byte, 128)}, "g")
	b.ReportAllocs()
	for b.Loop() {
		br.HandleFrame("n2", kindRouteMsg, body)
	}
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

type discardSubscriber struct{}

func (discardSubscriber) Deliver(*Subscription, *Message) {}
