package cluster

import (
	"net"
	"sync"
)

// Faults cuts this node's cluster links to chosen peers, for the in-process
// test cluster and the chaos harness. Links are identified by the peer's
// advertised cluster address, which every connection announces in its
// handshake, so both dialed and accepted connections can be cut. Blocking a
// peer closes the open connections to it and refuses new ones until it is
// unblocked. Production wiring never creates a Faults.
type Faults struct {
	mu      sync.Mutex
	blocked map[string]bool
	conns   map[net.Conn]string
}

// NewFaults returns a Faults that blocks nothing.
func NewFaults() *Faults {
	return &Faults{blocked: make(map[string]bool), conns: make(map[net.Conn]string)}
}

// Block cuts the links to the given peer cluster addresses.
func (f *Faults) Block(addrs ...string) {
	f.mu.Lock()
	var cut []net.Conn
	for _, a := range addrs {
		f.blocked[a] = true
	}
	for c, a := range f.conns {
		if f.blocked[a] {
			cut = append(cut, c)
			delete(f.conns, c)
		}
	}
	f.mu.Unlock()
	for _, c := range cut {
		_ = c.Close()
	}
}

// Unblock restores the links to the given peers.
func (f *Faults) Unblock(addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range addrs {
		delete(f.blocked, a)
	}
}

// UnblockAll restores every link.
func (f *Faults) UnblockAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.blocked)
}

// admit reports whether a connection with peer may be used and, if so,
// tracks it so a later Block can cut it. A nil Faults admits everything.
func (f *Faults) admit(c net.Conn, peer string) bool {
	if f == nil {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blocked[peer] {
		return false
	}
	f.conns[c] = peer
	return true
}

// forget stops tracking a closed connection.
func (f *Faults) forget(c net.Conn) {
	if f == nil {
		return
	}
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}
