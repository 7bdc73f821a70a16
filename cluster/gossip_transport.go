package cluster

import (
	"fmt"
	"net"
	"sync"

	"github.com/hashicorp/memberlist"
)

// newGossipTransport binds memberlist's network transport itself (wrapped
// with f when fault injection is on) and holds back everything it receives
// until open is called, which the node does once memberlist.Create has
// returned. Like memberlist.Create, it retries a dynamic port (port 0) a
// few times, since TCP and UDP must both get it, and writes the port it got
// back into mc.
//
// Why the gate: memberlist starts its listeners before it marks the local
// node alive (setAlive). A node restarted quickly after a crash still gets
// gossip meant for its previous incarnation, and an alive message about
// itself that is handled in that window creates the local node as dead
// with a higher incarnation than setAlive's, so setAlive is ignored. The
// node then never refutes its death (memberlist ignores suspect and dead
// messages about a node that is not alive), the others declare it dead
// for good, and once the dead entry is reaped the local node is gone from
// memberlist's map (UpdateNode and Leave then panic). Seen in a 5-node
// chaos run after kill-minority; see docs/reliability.md.
func newGossipTransport(mc *memberlist.Config, f *Faults) (*gatedTransport, error) {
	nc := &memberlist.NetTransportConfig{
		BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger, MetricLabels: mc.MetricLabels,
	}
	attempts := 1
	if mc.BindPort == 0 {
		attempts = 10
	}
	var nt *memberlist.NetTransport
	var err error
	for range attempts {
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gossip transport: %w", err)
	}
	if mc.BindPort == 0 {
		mc.BindPort = nt.GetAutoBindPort()
		mc.AdvertisePort = mc.BindPort
	}
	var inner memberlist.NodeAwareTransport = nt
	if f != nil {
		inner = newFaultTransport(nt, f)
	}
	g := newGatedTransport(inner)
	mc.Transport = g
	return g, nil
}

// gatedTransport passes a transport through unchanged, except that the
// packets and streams it receives reach memberlist only after open. Until
// then they wait in the inner transport (its listeners block on their
// unbuffered channels, and the kernel buffers the rest).
type gatedTransport struct {
	memberlist.NodeAwareTransport

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	opened    chan struct{}
	openOnce  sync.Once
	down      chan struct{} // closed when Shutdown starts
	innerDone chan struct{} // closed when the inner transport is down
	once      sync.Once
	wg        sync.WaitGroup
}

func newGatedTransport(inner memberlist.NodeAwareTransport) *gatedTransport {
	g := &gatedTransport{
		NodeAwareTransport: inner,
		packetCh:           make(chan *memberlist.Packet),
		streamCh:           make(chan net.Conn),
		opened:             make(chan struct{}),
		down:               make(chan struct{}),
		innerDone:          make(chan struct{}),
	}
	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		forwardGated(g, inner.PacketCh(), g.packetCh, func(*memberlist.Packet) {})
	}()
	go func() {
		defer g.wg.Done()
		forwardGated(g, inner.StreamCh(), g.streamCh, func(c net.Conn) { _ = c.Close() })
	}()
	return g
}

// open lets received packets and streams through to memberlist.
func (g *gatedTransport) open() { g.openOnce.Do(func() { close(g.opened) }) }

func (g *gatedTransport) PacketCh() <-chan *memberlist.Packet { return g.packetCh }

func (g *gatedTransport) StreamCh() <-chan net.Conn { return g.streamCh }

// Shutdown stops the inner transport. Its listeners block until their
// last item is taken, so the forwarders keep draining (and dropping) until
// it is down.
func (g *gatedTransport) Shutdown() error {
	var err error
	g.once.Do(func() {
		close(g.down)
		err = g.NodeAwareTransport.Shutdown()
		close(g.innerDone)
		g.wg.Wait()
	})
	return err
}

// forwardGated copies in to out once the gate opens. After Shutdown starts
// it only drains in, dropping what it takes, until the inner transport is
// down.
func forwardGated[T any](g *gatedTransport, in <-chan T, out chan<- T, drop func(T)) {
	select {
	case <-g.opened:
	case <-g.down:
	}
	for {
		select {
		case v := <-in:
			select {
			case out <- v:
			case <-g.down:
				drop(v)
			}
		case <-g.innerDone:
			return
		}
	}
}
