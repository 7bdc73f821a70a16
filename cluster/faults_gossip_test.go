package cluster

import (
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// gossipEnd is one fault-injecting gossip transport on a loopback port.
type gossipEnd struct {
	t      *gatedTransport // over the faultTransport, as a node runs it
	faults *Faults
	addr   string
}

func newGossipEnd(t *testing.T) *gossipEnd {
	t.Helper()
	mc := memberlist.DefaultLANConfig()
	mc.BindAddr, mc.BindPort = "127.0.0.1", 0
	mc.Logger = newStdLogger(zap.NewNop())
	f := NewFaults()
	g, err := newGossipTransport(mc, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown() })
	g.open()
	// memberlist.Create does this; it also names the tag's address.
	ip, port, err := g.FinalAdvertiseAddr("", mc.AdvertisePort)
	if err != nil {
		t.Fatal(err)
	}
	return &gossipEnd{t: g, faults: f, addr: net.JoinHostPort(ip.String(), strconv.Itoa(port))}
}

func (g *gossipEnd) nextPacket(t *testing.T) *memberlist.Packet {
	t.Helper()
	select {
	case p := <-g.t.PacketCh():
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet")
		return nil
	}
}

func (g *gossipEnd) nextStream(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-g.t.StreamCh():
		t.Cleanup(func() { _ = c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no stream")
		return nil
	}
}

func (g *gossipEnd) send(t *testing.T, to *gossipEnd, msg string) {
	t.Helper()
	if _, err := g.t.WriteTo([]byte(msg), to.addr); err != nil {
		t.Fatal(err)
	}
}

func TestFaultTransport_Packets(t *testing.T) {
	t.Parallel()
	a, b, c := newGossipEnd(t), newGossipEnd(t), newGossipEnd(t)

	a.send(t, b, "hello")
	p := b.nextPacket(t)
	if string(p.Buf) != "hello" || p.From.String() != a.addr {
		t.Fatalf("got %q from %s, want hello from %s", p.Buf, p.From, a.addr)
	}

	// Out on A: the packet never leaves A (WriteTo still succeeds).
	a.faults.BlockDirection(Out, b.addr)
	a.send(t, b, "dropped-out")
	a.faults.UnblockAll()
	a.send(t, b, "after-out")
	if p := b.nextPacket(t); string(p.Buf) != "after-out" {
		t.Fatalf("got %q, want after-out", p.Buf)
	}

	// In on B: A's packet arrives and is dropped; C's, sent after it, is
	// the next one memberlist sees.
	b.faults.BlockDirection(In, a.addr)
	a.send(t, b, "dropped-in")
	c.send(t, b, "from-c")
	if p := b.nextPacket(t); string(p.Buf) != "from-c" {
		t.Fatalf("got %q, want from-c", p.Buf)
	}
	b.faults.UnblockAll()
	a.send(t, b, "after-in")
	if p := b.nextPacket(t); string(p.Buf) != "after-in" {
		t.Fatalf("got %q, want after-in", p.Buf)
	}
}

func TestFaultTransport_Streams(t *testing.T) {
	t.Parallel()
	a, b := newGossipEnd(t), newGossipEnd(t)
	dial := func(from, to *gossipEnd) (net.Conn, error) {
		c, err := from.t.DialTimeout(to.addr, time.Second)
		if err == nil {
			t.Cleanup(func() { _ = c.Close() })
		}
		return c, err
	}

	// Unblocked: the tag is stripped, bytes flow both ways.
	c, err := dial(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("\x06push")); err != nil {
		t.Fatal(err)
	}
	s := b.nextStream(t)
	buf := make([]byte, 5)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "\x06push" {
		t.Fatalf("B read %q, %v", buf, err)
	}

	// A new block closes the open stream.
	b.faults.BlockDirection(Out, a.addr)
	if got := readAll(t, c); got != "" {
		t.Fatalf("A read %q", got)
	}
	b.faults.UnblockAll()

	// Out on A: dialing B fails.
	a.faults.BlockDirection(Out, b.addr)
	if _, err := dial(a, b); !errors.Is(err, errLinkCut) {
		t.Fatalf("dial with Out blocked: %v", err)
	}
	a.faults.UnblockAll()

	// In on B: B closes A's stream without handing it to memberlist.
	b.faults.BlockDirection(In, a.addr)
	c, err = dial(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c); got != "" {
		t.Fatalf("A read %q", got)
	}
	select {
	case s := <-b.t.StreamCh():
		t.Fatalf("a stream from a peer blocked In was handed over: %v", s.RemoteAddr())
	default:
	}
	b.faults.UnblockAll()

	// Out on B: B receives A's stream, but B's reply never reaches A.
	b.faults.BlockDirection(Out, a.addr)
	c, err = dial(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("req")); err != nil {
		t.Fatal(err)
	}
	s = b.nextStream(t)
	buf = buf[:3]
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "req" {
		t.Fatalf("B read %q, %v", buf, err)
	}
	if _, err := s.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if got := readAll(t, c); got != "" {
		t.Fatalf("A read %q through B's blocked Out", got)
	}
	b.faults.UnblockAll()

	// In on A: A's dial works, A's writes arrive, B's reply is swallowed.
	a.faults.BlockDirection(In, b.addr)
	c, err = dial(a, b)
	if err != nil {
		t.Fatal(err)
	}
	s = b.nextStream(t)
	if _, err := s.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if got := readAll(t, c); got != "" {
		t.Fatalf("A read %q through its blocked In", got)
	}
}

// TestFaultTransport_UntaggedStream: a stream from a node without fault
// injection (no tag) is handed over whole.
func TestFaultTransport_UntaggedStream(t *testing.T) {
	t.Parallel()
	b := newGossipEnd(t)
	b.faults.Block("127.0.0.1:1") // unrelated; the stream is from an unknown peer
	c, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("\x06state")); err != nil {
		t.Fatal(err)
	}
	s := b.nextStream(t)
	buf := make([]byte, 6)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "\x06state" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// TestFaultTransport_ShutdownWithSilentDialer: Shutdown does not wait for
// the tag of a stream that never sends one, nor for memberlist to read.
func TestFaultTransport_ShutdownWithSilentDialer(t *testing.T) {
	t.Parallel()
	a, b := newGossipEnd(t), newGossipEnd(t)
	silent, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// A tagged stream and a packet nobody reads.
	if c, err := a.t.DialTimeout(b.addr, time.Second); err == nil {
		defer c.Close()
	}
	a.send(t, b, "unread")
	done := make(chan error, 1)
	go func() { done <- b.t.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(handshakeTimeout / 2):
		t.Fatal("Shutdown blocked")
	}
}

func TestGossipTag_RoundTrip(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:7946", "[::1]:1", ""} {
		local, remote := tcpPair(t)
		if err := writeGossipTag(local, addr); err != nil {
			t.Fatal(err)
		}
		if _, err := local.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		got, c, err := readGossipTag(remote)
		if err != nil || got != addr {
			t.Fatalf("tag %q: got %q, %v", addr, got, err)
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil || b[0] != 'x' {
			t.Fatalf("after tag: %q, %v", b, err)
		}
	}
	local, remote := tcpPair(t)
	if _, err := local.Write([]byte{gossipTagMagic, 3, 'a', 'b', 'c'}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readGossipTag(remote); err == nil {
		t.Fatal("a tag without host:port was accepted")
	}
}
