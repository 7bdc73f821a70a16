package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// gossipTagMagic starts every gossip stream a fault-injecting node dials,
// followed by one length byte and the dialer's advertised gossip address.
// An accepted TCP stream comes from an ephemeral port, so without the tag
// the acceptor could not tell which peer it is from, and a block "in" (or a
// block "out", for the replies) could not apply to it. No memberlist stream
// starts with this byte (message types are below 16, the label header is
// 244), so a stream without the tag is still accepted, as from an unknown
// peer that no block applies to. The other way round does not work: a node
// without fault injection rejects tagged streams, so every node of a chaos
// cluster runs with it (and such a node cannot join a production cluster).
const gossipTagMagic byte = 0xF7

// faultTransport is memberlist's NetTransport with Faults applied, installed
// only when Config.Faults is set:
//   - UDP: a packet to an address blocked Out is dropped (WriteTo reports
//     success, as the network would); a packet from an address blocked In
//     (by its source address, which is the peer's gossip address) is
//     dropped before memberlist sees it.
//   - TCP streams: dials and accepts go through Faults.admit like the
//     cluster port's connections (dial fails while Out is blocked, an
//     accepted stream from a peer blocked In is closed, half-blocked
//     streams black-hole one direction), with the peer named by the tag.
type faultTransport struct {
	inner  *memberlist.NetTransport
	faults *Faults
	self   atomic.Pointer[string] // advertised gossip address, for the tag

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	// ctx is cancelled by Shutdown: stop handing packets and streams to
	// memberlist, but keep draining the inner transport, whose listeners
	// block on their unbuffered channels until it is down (innerDone).
	ctx       context.Context
	cancel    context.CancelFunc
	innerDone chan struct{}
	once      sync.Once
	wg        sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*faultTransport)(nil)

func newFaultTransport(inner *memberlist.NetTransport, f *Faults) *faultTransport {
	ctx, cancel := context.WithCancel(context.Background())
	t := &faultTransport{
		inner:     inner,
		faults:    f,
		packetCh:  make(chan *memberlist.Packet),
		streamCh:  make(chan net.Conn),
		ctx:       ctx,
		cancel:    cancel,
		innerDone: make(chan struct{}),
	}
	t.wg.Add(2)
	go t.packets()
	go t.streams()
	return t
}

// FinalAdvertiseAddr also records the address for the stream tag.
func (t *faultTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	aip, aport, err := t.inner.FinalAdvertiseAddr(ip, port)
	if err == nil {
		self := normalizeAddr(net.JoinHostPort(aip.String(), strconv.Itoa(aport)))
		t.self.Store(&self)
	}
	return aip, aport, err
}

func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.faults.blocks(a.Addr, Out) {
		return time.Now(), nil
	}
	return t.inner.WriteToAddress(b, a)
}

func (t *faultTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.faults.blocks(a.Addr, Out) {
		return nil, fmt.Errorf("dial %s: %w", a.Addr, errLinkCut)
	}
	c, err := t.inner.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	var self string
	if p := t.self.Load(); p != nil {
		self = *p
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if err := writeGossipTag(c, self); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("gossip tag %s: %w", a.Addr, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	fc, ok := t.faults.admit(c, a.Addr, true)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("dial %s: %w", a.Addr, errLinkCut)
	}
	return fc, nil
}

func (t *faultTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown stops the inner transport; memberlist calls it before it stops
// reading PacketCh and StreamCh.
func (t *faultTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		t.cancel()
		err = t.inner.Shutdown()
		close(t.innerDone)
		t.wg.Wait()
	})
	return err
}

// packets forwards the inner transport's packets, minus the blocked ones.
func (t *faultTransport) packets() {
	defer t.wg.Done()
	for {
		select {
		case p := <-t.inner.PacketCh():
			if t.faults.blocks(p.From.String(), In) {
				continue
			}
			select {
			case t.packetCh <- p:
			case <-t.ctx.Done():
			}
		case <-t.innerDone:
			return
		}
	}
}

// streams reads each accepted stream's tag on its own goroutine, so a
// silent dialer cannot hold up the others.
func (t *faultTransport) streams() {
	defer t.wg.Done()
	for {
		select {
		case c := <-t.inner.StreamCh():
			t.wg.Add(1)
			go t.accept(c)
		case <-t.innerDone:
			return
		}
	}
}

func (t *faultTransport) accept(c net.Conn) {
	defer t.wg.Done()
	// Shutdown must not wait for a silent dialer's tag.
	unblock := context.AfterFunc(t.ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	peer, conn, err := readGossipTag(c)
	unblock()
	if err != nil || t.ctx.Err() != nil {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if peer != "" {
		fc, ok := t.faults.admit(conn, peer, false)
		if !ok {
			_ = c.Close()
			return
		}
		conn = fc
	}
	select {
	case t.streamCh <- conn:
	case <-t.ctx.Done():
		_ = conn.Close()
	}
}

func writeGossipTag(w io.Writer, self string) error {
	if len(self) > 255 {
		return fmt.Errorf("address %q too long for the gossip tag", self)
	}
	b := make([]byte, 0, 2+len(self))
	b = append(b, gossipTagMagic, byte(len(self)))
	b = append(b, self...)
	_, err := w.Write(b)
	return err
}

// readGossipTag returns the dialer's address from the tag and the stream
// positioned after it. A stream without the tag is returned whole, with
// an empty address.
func readGossipTag(c net.Conn) (string, net.Conn, error) {
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		return "", nil, err
	}
	if first[0] != gossipTagMagic {
		return "", &prefixConn{Conn: c, prefix: first[:]}, nil
	}
	var n [1]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return "", nil, err
	}
	addr := make([]byte, n[0])
	if _, err := io.ReadFull(c, addr); err != nil {
		return "", nil, err
	}
	if len(addr) == 0 {
		return "", c, nil
	}
	if _, _, err := net.SplitHostPort(string(addr)); err != nil {
		return "", nil, errors.New("gossip tag: not a host:port address")
	}
	return string(addr), c, nil
}

// prefixConn returns bytes already read from a connection before the rest.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
