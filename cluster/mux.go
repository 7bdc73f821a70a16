package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// The cluster port carries two protocols. Every connection starts with a
// handshake: one kind byte, then the dialer's advertised cluster address
// (uint16 length + bytes), so the acceptor knows which peer it talks to
// (for fault injection and logs) before handing the stream on.
const (
	connRaft   byte = 'R' // hashicorp/raft NetworkTransport RPCs
	connFrames byte = 'F' // Flotilla frames: routing, interest, forwarding

	handshakeTimeout = 5 * time.Second
)

// mux owns the cluster listener and demultiplexes accepted connections.
type mux struct {
	ln      net.Listener
	self    string // our advertised cluster address
	faults  *Faults
	log     *zap.Logger
	raftCh  chan net.Conn
	frames  func(c net.Conn, peer string) // handles an accepted frames connection
	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	timeout time.Duration
}

func newMux(ln net.Listener, self string, faults *Faults, log *zap.Logger) *mux {
	return &mux{
		ln:      ln,
		self:    self,
		faults:  faults,
		log:     log,
		raftCh:  make(chan net.Conn, 16),
		closed:  make(chan struct{}),
		timeout: handshakeTimeout,
	}
}

// serve accepts until the listener closes. Each handshake runs on its own
// goroutine so a silent dialer cannot stall the accept loop.
func (m *mux) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			m.log.Warn("cluster accept failed", zap.Error(err))
			time.Sleep(50 * time.Millisecond) // pacing a retry loop
			continue
		}
		m.wg.Add(1)
		go m.handshake(c)
	}
}

func (m *mux) handshake(c net.Conn) {
	defer m.wg.Done()
	_ = c.SetReadDeadline(time.Now().Add(m.timeout))
	kind, peer, err := readHandshake(c)
	if err != nil {
		_ = c.Close()
		return
	}
	fc, ok := m.faults.admit(c, peer, false)
	if !ok {
		_ = c.Close()
		return
	}
	c = fc
	_ = c.SetReadDeadline(time.Time{})
	switch kind {
	case connRaft:
		select {
		case m.raftCh <- c:
		case <-m.closed:
			_ = c.Close()
		}
	case connFrames:
		if m.frames == nil {
			_ = c.Close()
			return
		}
		m.frames(c, peer)
	default:
		m.log.Warn("unknown cluster connection kind", zap.Uint8("kind", kind), zap.String("peer_addr", peer))
		_ = c.Close()
	}
}

// dial opens a connection of the given kind to a peer's cluster address.
func (m *mux) dial(kind byte, addr string, timeout time.Duration) (net.Conn, error) {
	if m.faults.blocks(addr, Out) {
		return nil, fmt.Errorf("dial %s: %w", addr, errLinkCut)
	}
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if err := writeHandshake(c, kind, m.self); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("handshake %s: %w", addr, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	// Checked again: a block may have come while dialing.
	fc, ok := m.faults.admit(c, addr, true)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, errLinkCut)
	}
	return fc, nil
}

func (m *mux) close() {
	m.once.Do(func() {
		close(m.closed)
		_ = m.ln.Close()
	})
	m.wg.Wait()
}

var errLinkCut = errors.New("link cut by fault injection")

func writeHandshake(w io.Writer, kind byte, self string) error {
	b := make([]byte, 0, 3+len(self))
	b = append(b, kind)
	b = binary.BigEndian.AppendUint16(b, uint16(len(self)))
	b = append(b, self...)
	_, err := w.Write(b)
	return err
}

func readHandshake(r io.Reader) (kind byte, peer string, err error) {
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, "", err
	}
	n := binary.BigEndian.Uint16(hdr[1:])
	if n > 512 {
		return 0, "", fmt.Errorf("handshake address too long: %d", n)
	}
	addr := make([]byte, n)
	if _, err := io.ReadFull(r, addr); err != nil {
		return 0, "", err
	}
	return hdr[0], string(addr), nil
}

// raftLayer adapts the mux to raft.StreamLayer.
type raftLayer struct{ m *mux }

var _ raft.StreamLayer = raftLayer{}

func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

func (l raftLayer) Close() error { return nil } // the mux owns the listener

func (l raftLayer) Addr() net.Addr { return advertisedAddr(l.m.self) }

func (l raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.m.dial(connRaft, string(address), timeout)
}

// advertisedAddr is a net.Addr for the advertised host:port, which raft
// uses as this node's address in its configuration.
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }
