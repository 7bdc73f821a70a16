package cluster

import (
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
)

// Direction says which way traffic with a peer is cut. Directions combine:
// blocking In and then Out on the same address gives Both.
type Direction uint8

const (
	// Out drops what this node sends to the peer.
	Out Direction = 1 << iota
	// In drops what this node receives from the peer.
	In
	// Both cuts the link completely.
	Both = In | Out
)

// ParseDirection parses "in", "out" or "both"; "" means both.
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "", "both":
		return Both, nil
	case "in":
		return In, nil
	case "out":
		return Out, nil
	}
	return 0, fmt.Errorf("direction %q: want in, out or both", s)
}

func (d Direction) String() string {
	switch d {
	case In:
		return "in"
	case Out:
		return "out"
	case Both:
		return "both"
	}
	return "none"
}

// Faults cuts this node's links to chosen peers, for the in-process test
// cluster and the chaos harness (cmd/flotilla's --unsafe-fault-injection).
// Production wiring never creates one: with Config.Faults nil nothing is
// wrapped and every check below is skipped.
//
// Peers are identified by address: a peer's advertised cluster address
// covers the Raft and frame links of the cluster port (every connection
// announces it in the mux handshake), its advertised gossip address covers
// memberlist's UDP packets and TCP streams (see faults_gossip.go). Cutting
// a peer off completely takes both addresses.
//
// On TCP links a direction acts on whole connections:
//   - a new block closes every open connection with the peer, so nothing
//     sent before the block is still in flight after it;
//   - while Out is blocked, dialing the peer fails, and a connection the
//     peer dials in is accepted but what this node writes on it is
//     silently discarded;
//   - while In is blocked, a connection the peer dials in is closed at
//     once, and a connection this node dials succeeds but nothing is ever
//     read from it (the peer's bytes are swallowed);
//   - healing closes the connections that were half black-holed, so no
//     stream resumes with a gap in the middle.
//
// A one-way partition A-/->B is therefore Out on A plus In on B: A cannot
// dial B, B's dials reach A and A receives what B sends, but A's replies
// are dropped by A and would be swallowed by B anyway.
type Faults struct {
	mu       sync.Mutex
	blocked  map[string]Direction
	conns    map[*faultConn]struct{}
	syncGate chan struct{} // non-nil while log syncs are held
}

// HoldLogSyncs makes this node's Raft log syncs wait until
// ReleaseLogSyncs: a disk that stalls. Appends still reach the log file
// (and, from a leader, the followers); they just do not become durable.
func (f *Faults) HoldLogSyncs() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncGate == nil {
		f.syncGate = make(chan struct{})
	}
}

// ReleaseLogSyncs lets held and later log syncs run.
func (f *Faults) ReleaseLogSyncs() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncGate != nil {
		close(f.syncGate)
		f.syncGate = nil
	}
}

// waitLogSync is the segment log's hook before each sync.
func (f *Faults) waitLogSync() {
	f.mu.Lock()
	g := f.syncGate
	f.mu.Unlock()
	if g != nil {
		<-g
	}
}

// NewFaults returns a Faults that blocks nothing.
func NewFaults() *Faults {
	return &Faults{blocked: make(map[string]Direction), conns: make(map[*faultConn]struct{})}
}

// Block cuts the links to the given peer addresses in both directions.
func (f *Faults) Block(addrs ...string) { f.BlockDirection(Both, addrs...) }

// BlockDirection adds d to the blocked directions of each address and
// closes the open connections with every address whose block grew.
func (f *Faults) BlockDirection(d Direction, addrs ...string) {
	f.mu.Lock()
	grew := map[string]bool{}
	for _, a := range addrs {
		a = normalizeAddr(a)
		if old := f.blocked[a]; old|d != old {
			f.blocked[a] = old | d
			grew[a] = true
		}
	}
	cut := f.untrackLocked(func(c *faultConn) bool { return grew[c.peer] })
	f.mu.Unlock()
	closeAll(cut)
}

// Unblock restores the links to the given peers and closes the
// connections with them that were half black-holed.
func (f *Faults) Unblock(addrs ...string) {
	f.mu.Lock()
	healed := map[string]bool{}
	for _, a := range addrs {
		a = normalizeAddr(a)
		delete(f.blocked, a)
		healed[a] = true
	}
	cut := f.untrackLocked(func(c *faultConn) bool { return healed[c.peer] && c.holed() })
	f.mu.Unlock()
	closeAll(cut)
}

// UnblockAll restores every link and closes every half black-holed
// connection.
func (f *Faults) UnblockAll() {
	f.mu.Lock()
	clear(f.blocked)
	cut := f.untrackLocked((*faultConn).holed)
	f.mu.Unlock()
	closeAll(cut)
}

// Blocked returns a copy of the blocked addresses and their directions.
func (f *Faults) Blocked() map[string]Direction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.blocked)
}

// blocks reports whether traffic in direction d with addr is cut. A nil
// Faults blocks nothing.
func (f *Faults) blocks(addr string, d Direction) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.blocked) == 0 {
		return false
	}
	return f.blocked[normalizeAddr(addr)]&d != 0
}

// admit decides whether a new connection with peer may be used. dialed
// says this node opened it. It returns the connection to use instead of c
// (wrapped and tracked so a later Block can cut it), or false when the
// connection must be closed: a dial while Out is blocked, an accept while
// In is blocked. A nil Faults admits c as it is.
func (f *Faults) admit(c net.Conn, peer string, dialed bool) (net.Conn, bool) {
	if f == nil {
		return c, true
	}
	peer = normalizeAddr(peer)
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.blocked[peer]
	if (dialed && d&Out != 0) || (!dialed && d&In != 0) {
		return nil, false
	}
	fc := &faultConn{Conn: c, f: f, peer: peer, dropOut: d&Out != 0, dropIn: d&In != 0}
	f.conns[fc] = struct{}{}
	return fc, true
}

// untrackLocked removes and returns the tracked connections matching cut.
func (f *Faults) untrackLocked(cut func(*faultConn) bool) []*faultConn {
	var out []*faultConn
	for c := range f.conns {
		if cut(c) {
			out = append(out, c)
			delete(f.conns, c)
		}
	}
	return out
}

// forget stops tracking a closed connection.
func (f *Faults) forget(c *faultConn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func closeAll(cs []*faultConn) {
	for _, c := range cs {
		_ = c.Conn.Close()
	}
}

// normalizeAddr writes IP addresses one way ("[::1]:7946" and
// "[0:0::1]:7946" are the same peer); anything else is kept as given.
func normalizeAddr(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	if ip := net.ParseIP(host); ip != nil {
		return net.JoinHostPort(ip.String(), port)
	}
	return strings.ToLower(a)
}

// faultConn is a connection with a peer admitted by Faults. Its dropped
// directions are fixed when it is admitted: any later change of the peer's
// block closes it (Block always, a heal when something was dropped).
type faultConn struct {
	net.Conn
	f       *Faults
	peer    string
	dropOut bool // writes are discarded
	dropIn  bool // reads swallow everything
	once    sync.Once
}

// holed reports whether the connection drops anything.
func (c *faultConn) holed() bool { return c.dropOut || c.dropIn }

func (c *faultConn) Write(b []byte) (int, error) {
	if c.dropOut {
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// Read never returns data while In is dropped: it consumes the peer's
// bytes until the connection fails, is closed or hits its deadline.
func (c *faultConn) Read(b []byte) (int, error) {
	if !c.dropIn {
		return c.Conn.Read(b)
	}
	var scratch [4096]byte
	for {
		if _, err := c.Conn.Read(scratch[:]); err != nil {
			return 0, err
		}
	}
}

func (c *faultConn) Close() error {
	c.once.Do(func() { c.f.forget(c) })
	return c.Conn.Close()
}
