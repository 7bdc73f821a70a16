package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/metrics"
)

// Frames are Flotilla's node-to-node messages on the cluster port: a
// 4-byte big-endian body length, one kind byte, then the body. Kinds below
// FirstUserKind belong to this package (hello, forwarding); the rest are
// opaque to it and are handed to the registered FrameHandler (the broker's
// routing of interest and messages).
const (
	kindHello      byte = 1
	kindForwardReq byte = 2
	kindForwardRes byte = 3

	// FirstUserKind is the lowest frame kind available to FrameHandler users.
	FirstUserKind byte = 16

	maxFrameBody   = 80 << 20 // above the largest payload plus headers
	peerMaxPending = 64 << 20 // per-peer outbound buffer before frames are dropped
	peerDialWait   = 2 * time.Second
)

// FrameHandler receives frames from peers and peer lifecycle events. The
// broker implements it to route core messages across nodes.
type FrameHandler interface {
	// HandleFrame runs on the peer's read goroutine; body is valid only
	// during the call, and the handler must not block for long.
	HandleFrame(from string, kind byte, body []byte)
	// PeerUp is called each time the outbound connection to a peer is
	// (re)established, before any frame queued afterwards is sent; it is
	// where full state (e.g. interest) is resent.
	PeerUp(id string)
	// PeerDown is called when a peer leaves or dies: drop its state.
	PeerDown(id string)
}

// peer is the outbound side of one node-to-node link: a buffered writer
// goroutine that (re)dials while the peer is a live member. Frames are sent
// only while connected; what cannot be sent is dropped and counted (core
// messages are at-most-once; forwarding retries on its own).
type peer struct {
	id, addr string
	p        *peers

	mu        sync.Mutex
	out       []byte
	spare     []byte
	connected bool
	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
}

// peers owns every outbound link and serves inbound ones.
type peers struct {
	self    string
	mux     *mux
	log     *zap.Logger
	m       *metrics.Cluster
	handler func() FrameHandler
	onFrame func(from string, kind byte, body []byte) // internal kinds

	mu      sync.Mutex
	byID    map[string]*peer
	inbound map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// newPeers returns an empty peer set. It exists from New on, so Send and
// Broadcast are safe (and reach no one) before Start; Start sets mux before
// any link is created.
func newPeers(self string, log *zap.Logger, m *metrics.Cluster) *peers {
	return &peers{self: self, log: log, m: m, byID: make(map[string]*peer), inbound: make(map[net.Conn]struct{})}
}

// connected reports whether the outbound link to id is up.
func (ps *peers) connected(id string) bool {
	ps.mu.Lock()
	pr := ps.byID[id]
	ps.mu.Unlock()
	if pr == nil {
		return false
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.connected
}

// ensure starts (or re-targets) the link to a live peer.
func (ps *peers) ensure(id, addr string) {
	if id == ps.self || addr == "" {
		return
	}
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return
	}
	old := ps.byID[id]
	if old != nil && old.addr == addr {
		ps.mu.Unlock()
		return
	}
	pr := &peer{id: id, addr: addr, p: ps, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	ps.byID[id] = pr
	ps.wg.Add(1)
	ps.mu.Unlock()
	if old != nil {
		old.close()
	}
	go pr.run()
}

// remove stops the link to a peer that left or died.
func (ps *peers) remove(id string) bool {
	ps.mu.Lock()
	pr := ps.byID[id]
	delete(ps.byID, id)
	ps.mu.Unlock()
	if pr != nil {
		pr.close()
	}
	return pr != nil
}

// send queues one frame for a peer.
func (ps *peers) send(id string, kind byte, body []byte) error {
	ps.mu.Lock()
	pr := ps.byID[id]
	ps.mu.Unlock()
	if pr == nil || !pr.enqueue(kind, body) {
		ps.m.FramesDropped.Inc()
		return fmt.Errorf("send to %s: %w", id, ErrPeerUnavailable)
	}
	return nil
}

// broadcast queues one frame for every connected peer.
func (ps *peers) broadcast(kind byte, body []byte) {
	ps.mu.Lock()
	all := make([]*peer, 0, len(ps.byID))
	for _, pr := range ps.byID {
		all = append(all, pr)
	}
	ps.mu.Unlock()
	for _, pr := range all {
		if !pr.enqueue(kind, body) {
			ps.m.FramesDropped.Inc()
		}
	}
}

// connectedIDs returns the peers with an open outbound link.
func (ps *peers) connectedIDs() []string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var ids []string
	for id, pr := range ps.byID {
		pr.mu.Lock()
		if pr.connected {
			ids = append(ids, id)
		}
		pr.mu.Unlock()
	}
	return ids
}

func (ps *peers) close() {
	ps.mu.Lock()
	ps.closed = true
	all := ps.byID
	ps.byID = map[string]*peer{}
	in := ps.inbound
	ps.inbound = map[net.Conn]struct{}{}
	ps.mu.Unlock()
	for _, pr := range all {
		pr.close()
	}
	for c := range in {
		_ = c.Close()
	}
	ps.wg.Wait()
}

func (pr *peer) enqueue(kind byte, body []byte) bool {
	pr.mu.Lock()
	if !pr.connected || len(pr.out)+len(body)+5 > peerMaxPending {
		pr.mu.Unlock()
		return false
	}
	pr.out = appendFrame(pr.out, kind, body)
	pr.mu.Unlock()
	select {
	case pr.wake <- struct{}{}:
	default:
	}
	return true
}

func appendFrame(b []byte, kind byte, body []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	b = append(b, kind)
	return append(b, body...)
}

func (pr *peer) close() {
	select {
	case <-pr.stop:
	default:
		close(pr.stop)
	}
	<-pr.done
}

// run dials and redials until the peer is removed. Each connection starts
// with a hello frame naming this node, then PeerUp lets the handler queue
// its full state before anything else goes out.
func (pr *peer) run() {
	defer pr.p.wg.Done()
	defer close(pr.done)
	backoff := 20 * time.Millisecond
	for {
		c, err := pr.p.mux.dial(connFrames, pr.addr, peerDialWait)
		if err == nil {
			backoff = 20 * time.Millisecond
			pr.serve(c)
		} else {
			pr.p.log.Debug("peer dial failed", zap.String("peer_id", pr.id), zap.Error(err))
		}
		select {
		case <-pr.stop:
			return
		case <-time.After(backoff): // redial pacing, not synchronisation
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (pr *peer) serve(c net.Conn) {
	defer c.Close()
	pr.mu.Lock()
	pr.out = appendFrame(pr.out[:0], kindHello, []byte(pr.p.self))
	pr.connected = true
	pr.mu.Unlock()
	pr.p.m.PeerConnections.Inc()
	pr.p.log.Info("peer link up", zap.String("peer_id", pr.id), zap.String("cluster_addr", pr.addr))
	defer func() {
		pr.mu.Lock()
		pr.connected = false
		pr.out = pr.out[:0]
		pr.mu.Unlock()
		pr.p.m.PeerConnections.Dec()
		pr.p.log.Info("peer link down", zap.String("peer_id", pr.id))
	}()
	if h := pr.p.handler(); h != nil {
		h.PeerUp(pr.id)
	}
	// The peer never writes on this connection; a read returning means it
	// closed, which must end the writer too.
	broken := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, c)
		close(broken)
	}()
	for {
		pr.mu.Lock()
		buf := pr.out
		pr.out, pr.spare = pr.spare[:0], nil
		pr.mu.Unlock()
		if len(buf) > 0 {
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(buf); err != nil {
				return
			}
			pr.p.m.FramesOut.Inc()
		}
		pr.mu.Lock()
		if cap(buf) <= 1<<20 {
			pr.spare = buf[:0]
		}
		pending := len(pr.out) > 0
		pr.mu.Unlock()
		if pending {
			continue
		}
		select {
		case <-pr.wake:
		case <-broken:
			return
		case <-pr.stop:
			return
		}
	}
}

// serveInbound reads frames from a peer's outbound link (run on the mux's
// handshake goroutine). The first frame must be hello.
func (ps *peers) serveInbound(c net.Conn, addr string) {
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		_ = c.Close()
		return
	}
	ps.inbound[c] = struct{}{}
	ps.mu.Unlock()
	defer func() {
		ps.mu.Lock()
		delete(ps.inbound, c)
		ps.mu.Unlock()
		_ = c.Close()
	}()
	r := bufio.NewReaderSize(c, 64<<10)
	var from string
	var buf []byte
	for {
		kind, body, err := readFrame(r, &buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				ps.log.Debug("peer link read ended", zap.String("peer_id", from), zap.Error(err))
			}
			return
		}
		ps.m.FramesIn.Inc()
		switch {
		case from == "" && kind != kindHello:
			ps.log.Warn("peer link without hello", zap.String("cluster_addr", addr))
			return
		case kind == kindHello:
			from = string(body)
		case kind < FirstUserKind:
			ps.onFrame(from, kind, body)
		default:
			if h := ps.handler(); h != nil {
				h.HandleFrame(from, kind, body)
			}
		}
	}
}

// readFrame reads one frame, reusing *buf for the body.
func readFrame(r *bufio.Reader, buf *[]byte) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n > maxFrameBody {
		return 0, nil, fmt.Errorf("frame of %d bytes exceeds limit", n)
	}
	if cap(*buf) < int(n) {
		*buf = make([]byte, n)
	}
	body := (*buf)[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return hdr[4], body, nil
}
