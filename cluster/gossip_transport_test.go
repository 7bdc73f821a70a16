package cluster

import (
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

	"github.com/flotilla/flotilla/internal/testutil"
)

// heldFor is how long a test watches a closed gate for leaks. It only
// bounds a negative check (nothing must arrive); nothing waits on it.
const heldFor = 200 * time.Millisecond

func newTestGossipTransport(t *testing.T, port int) (*gatedTransport, *memberlist.Config) {
	t.Helper()
	mc := memberlist.DefaultLANConfig()
	mc.BindAddr, mc.BindPort = "127.0.0.1", port
	mc.Logger = newStdLogger(zap.NewNop())
	g, err := newGossipTransport(mc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown() })
	return g, mc
}

func TestGatedTransport_HoldsUntilOpen(t *testing.T) {
	t.Parallel()
	g, mc := newTestGossipTransport(t, 0)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(mc.BindPort))

	udp, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if _, err := udp.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()

	select {
	case p := <-g.PacketCh():
		t.Fatalf("packet %q let through before open", p.Buf)
	case c := <-g.StreamCh():
		_ = c.Close()
		t.Fatal("stream let through before open")
	case <-time.After(heldFor):
	}

	g.open()
	gotPacket, gotStream := false, false
	deadline := time.After(5 * time.Second)
	for !gotPacket || !gotStream {
		select {
		case p := <-g.PacketCh():
			if string(p.Buf) != "early" {
				t.Fatalf("packet %q, want early", p.Buf)
			}
			gotPacket = true
		case c := <-g.StreamCh():
			_ = c.Close()
			gotStream = true
		case <-deadline:
			t.Fatalf("after open: packet %v, stream %v", gotPacket, gotStream)
		}
	}
}

func TestGatedTransport_ShutdownWhileHolding(t *testing.T) {
	t.Parallel()
	for _, opened := range []bool{false, true} {
		g, mc := newTestGossipTransport(t, 0)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(mc.BindPort))
		if opened {
			g.open() // open, but nobody reads: the forwarders hold one item each
		}
		udp, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		for range 3 {
			if _, err := udp.Write([]byte("unread")); err != nil {
				t.Fatal(err)
			}
		}
		tcp, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer tcp.Close()
		done := make(chan error, 1)
		go func() { done <- g.Shutdown() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Shutdown blocked (opened %v)", opened)
		}
	}
}

// TestGossip_RestartAmidOldGossip restarts a member on its old address
// while a peer still holds its previous incarnation as alive, with the
// peer's push-pull arriving before the new memberlist has started (the
// chaos finding: the local node then came up dead and was later reaped
// from its own member map). The restarted node must be alive to itself,
// refute the old incarnation, and be seen alive with its new metadata.
func TestGossip_RestartAmidOldGossip(t *testing.T) {
	t.Parallel()
	// Metadata is read from the members' event delegates: memberlist's
	// Members() hands out nodes it keeps writing to.
	fast := func(id string, client *atomic.Value) (*memberlist.Config, *membership) {
		ms := newMembership(zap.NewNop(), func() Meta { return Meta{ID: id, Client: client.Load().(string)} })
		mc := memberlist.DefaultLocalConfig()
		mc.Name = id
		mc.BindAddr, mc.BindPort = "127.0.0.1", 0
		mc.Logger = newStdLogger(zap.NewNop())
		mc.Delegate, mc.Events = ms, ms
		return mc, ms
	}
	var clientA, clientOld, clientNew atomic.Value
	clientA.Store("a")
	clientOld.Store("old-0")
	clientNew.Store("new")

	ca, msA := fast("n1", &clientA)
	ca.ProbeInterval = time.Hour // n1 keeps the old n2 alive: it never probes
	ca.GossipInterval = time.Hour
	a, err := memberlist.Create(ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown() })

	co, _ := fast("n2", &clientOld)
	old, err := memberlist.Create(co)
	if err != nil {
		t.Fatal(err)
	}
	port := co.BindPort
	if _, err := old.Join([]string{a.LocalNode().Address()}); err != nil {
		t.Fatal(err)
	}
	// Raise the old incarnation well above what a new process starts at.
	for i := 1; i <= 5; i++ {
		clientOld.Store("old-" + strconv.Itoa(i))
		if err := old.UpdateNode(time.Second); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 5*time.Second, func() error { return wantMember(msA, "n2", "old-5") })
	_ = old.Shutdown() // a crash: no leave

	cn, _ := fast("n2", &clientNew)
	cn.BindPort = port
	g, err := newGossipTransport(cn, nil)
	if err != nil {
		t.Fatal(err)
	}
	joined := make(chan error, 1)
	go func() { _, err := a.Join([]string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}); joined <- err }()
	restarted, err := memberlist.Create(cn)
	if err != nil {
		_ = g.Shutdown()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restarted.Shutdown() })
	g.open()
	if err := <-joined; err != nil {
		t.Fatal(err)
	}

	testutil.Eventually(t, 10*time.Second, func() error { return wantMember(msA, "n2", "new") })
	self := false
	for _, n := range restarted.Members() { // only live members; Name is never rewritten
		self = self || n.Name == "n2"
	}
	if !self {
		t.Fatal("the restarted node is not alive in its own member list")
	}
	if err := restarted.UpdateNode(time.Second); err != nil {
		t.Fatal(err)
	}
}

// wantMember checks that ms has id alive with the given client address.
func wantMember(ms *membership, id, client string) error {
	m, ok := ms.get(id)
	switch {
	case !ok:
		return fmt.Errorf("%s unknown", id)
	case m.Status != StatusAlive || m.Client != client:
		return fmt.Errorf("%s is %s with client %q, want alive with %q", id, m.Status, m.Client, client)
	}
	return nil
}
