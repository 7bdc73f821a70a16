package cluster

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestParseDirection(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Direction{"": Both, "both": Both, "in": In, "out": Out} {
		got, err := ParseDirection(in)
		if err != nil || got != want {
			t.Errorf("ParseDirection(%q) = %v, %v; want %v", in, got, err, want)
		}
		if in != "" && got.String() != in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, bad := range []string{"IN", "none", "x"} {
		if _, err := ParseDirection(bad); err == nil {
			t.Errorf("ParseDirection(%q) succeeded", bad)
		}
	}
}

// TestFaults_Admit is the decision table: a dial is refused while Out is
// blocked, an accept while In is blocked; otherwise the connection is
// admitted with the blocked direction black-holed.
func TestFaults_Admit(t *testing.T) {
	t.Parallel()
	const peer = "127.0.0.1:7101"
	cases := []struct {
		block           Direction // 0: none
		dialed          bool
		ok              bool
		dropOut, dropIn bool
	}{
		{0, true, true, false, false},
		{0, false, true, false, false},
		{Out, true, false, false, false},
		{Out, false, true, true, false},
		{In, true, true, false, true},
		{In, false, false, false, false},
		{Both, true, false, false, false},
		{Both, false, false, false, false},
	}
	for _, tc := range cases {
		f := NewFaults()
		if tc.block != 0 {
			f.BlockDirection(tc.block, peer)
		}
		a, b := net.Pipe()
		c, ok := f.admit(a, peer, tc.dialed)
		if ok != tc.ok {
			t.Errorf("block %v dialed %v: admitted %v, want %v", tc.block, tc.dialed, ok, tc.ok)
		} else if ok {
			fc := c.(*faultConn)
			if fc.dropOut != tc.dropOut || fc.dropIn != tc.dropIn {
				t.Errorf("block %v dialed %v: dropOut %v dropIn %v, want %v %v", tc.block, tc.dialed, fc.dropOut, fc.dropIn, tc.dropOut, tc.dropIn)
			}
		}
		_ = a.Close()
		_ = b.Close()
	}
	if c, ok := (*Faults)(nil).admit(nil, peer, true); !ok || c != nil {
		t.Fatal("a nil Faults must admit the connection unwrapped")
	}
}

func TestFaults_DirectionsAccumulateAndState(t *testing.T) {
	t.Parallel()
	f := NewFaults()
	f.BlockDirection(Out, "127.0.0.1:1", "[0:0::1]:2")
	f.BlockDirection(In, "127.0.0.1:1")
	f.Block("127.0.0.1:3")
	want := map[string]Direction{"127.0.0.1:1": Both, "[::1]:2": Out, "127.0.0.1:3": Both}
	got := f.Blocked()
	if len(got) != len(want) {
		t.Fatalf("Blocked() = %v, want %v", got, want)
	}
	for a, d := range want {
		if got[a] != d {
			t.Fatalf("Blocked()[%s] = %v, want %v (all: %v)", a, got[a], d, got)
		}
	}
	if !f.blocks("[::1]:2", Out) || f.blocks("[::1]:2", In) {
		t.Fatal("blocks([::1]:2) wrong")
	}
	f.Unblock("127.0.0.1:1")
	if f.blocks("127.0.0.1:1", Both) || !f.blocks("127.0.0.1:3", In) {
		t.Fatalf("after Unblock: %v", f.Blocked())
	}
	f.UnblockAll()
	if len(f.Blocked()) != 0 {
		t.Fatalf("after UnblockAll: %v", f.Blocked())
	}
}

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t *testing.T) (dialed, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	dialed, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { _ = dialed.Close(); _ = r.c.Close() })
	return dialed, r.c
}

// readAll reads until EOF (or an error) within a deadline.
func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func TestFaultConn_DropOut_DiscardsWrites(t *testing.T) {
	t.Parallel()
	f := NewFaults()
	f.BlockDirection(Out, "peer:1")
	local, remote := tcpPair(t)
	c, ok := f.admit(local, "peer:1", false)
	if !ok {
		t.Fatal("accept refused")
	}
	if n, err := c.Write([]byte("dropped")); n != 7 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	// Reading still works.
	if _, err := remote.Write([]byte("in")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "in" {
		t.Fatalf("read %q, %v", buf, err)
	}
	_ = c.Close()
	if got := readAll(t, remote); got != "" {
		t.Fatalf("peer received %q through a blocked Out", got)
	}
}

func TestFaultConn_DropIn_SwallowsReads(t *testing.T) {
	t.Parallel()
	f := NewFaults()
	f.BlockDirection(In, "peer:1")
	local, remote := tcpPair(t)
	c, ok := f.admit(local, "peer:1", true)
	if !ok {
		t.Fatal("dial refused")
	}
	if _, err := c.Write([]byte("out")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(remote, buf); err != nil || string(buf) != "out" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
	if _, err := remote.Write([]byte("swallowed")); err != nil {
		t.Fatal(err)
	}
	_ = remote.Close()
	if got := readAll(t, c); got != "" {
		t.Fatalf("read %q through a blocked In", got)
	}
}

func TestFaults_BlockClosesOpenConnections_HealClosesHoled(t *testing.T) {
	t.Parallel()
	f := NewFaults()
	// An open, unblocked connection is cut by a new block.
	local, remote := tcpPair(t)
	if _, ok := f.admit(local, "peer:1", true); !ok {
		t.Fatal("refused")
	}
	f.BlockDirection(In, "peer:1")
	if got := readAll(t, remote); got != "" {
		t.Fatalf("peer read %q", got)
	}
	// A half black-holed connection is closed on heal; a clean one to
	// another peer is not.
	holed, holedRemote := tcpPair(t)
	if _, ok := f.admit(holed, "peer:1", true); !ok {
		t.Fatal("refused")
	}
	clean, cleanRemote := tcpPair(t)
	cc, ok := f.admit(clean, "peer:2", true)
	if !ok {
		t.Fatal("refused")
	}
	// Re-blocking the same direction is no change: nothing is closed.
	f.BlockDirection(In, "peer:1")
	f.UnblockAll()
	if got := readAll(t, holedRemote); got != "" {
		t.Fatalf("peer read %q", got)
	}
	if _, err := cc.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(cleanRemote, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("clean connection broken: %q, %v", buf, err)
	}
	_ = cc.Close()
	f.mu.Lock()
	n := len(f.conns)
	f.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d connections still tracked", n)
	}
}

// newTestMux serves a mux on a loopback port.
func newTestMux(t *testing.T, f *Faults) *mux {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newMux(ln, ln.Addr().String(), f, zap.NewNop())
	m.wg.Add(1)
	go m.serve()
	t.Cleanup(m.close)
	return m
}

// TestMux_OneWayPartition: A-/->B is Out on A and In on B. A cannot dial
// B; B can dial A and A receives what B writes, but nothing A writes back
// reaches B.
func TestMux_OneWayPartition(t *testing.T) {
	t.Parallel()
	fa, fb := NewFaults(), NewFaults()
	a, b := newTestMux(t, fa), newTestMux(t, fb)
	fa.BlockDirection(Out, b.self)
	fb.BlockDirection(In, a.self)

	if _, err := a.dial(connRaft, b.self, time.Second); !errors.Is(err, errLinkCut) {
		t.Fatalf("A dial B: %v, want errLinkCut", err)
	}
	c, err := b.dial(connRaft, a.self, time.Second)
	if err != nil {
		t.Fatalf("B dial A: %v", err)
	}
	if _, err := c.Write([]byte("vote")); err != nil {
		t.Fatal(err)
	}
	in, err := raftLayer{a}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(in, buf); err != nil || string(buf) != "vote" {
		t.Fatalf("A read %q, %v", buf, err)
	}
	if _, err := in.Write([]byte("granted")); err != nil {
		t.Fatal(err)
	}
	_ = in.Close()
	if got := readAll(t, c); got != "" {
		t.Fatalf("B read %q across the partition", got)
	}

	// Healed (both sides), the half-blocked link is closed and B's new
	// connections carry both ways.
	fa.UnblockAll()
	fb.UnblockAll()
	c2, err := a.dial(connRaft, b.self, time.Second)
	if err != nil {
		t.Fatalf("A dial B after heal: %v", err)
	}
	defer c2.Close()
	in2, err := raftLayer{b}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer in2.Close()
	if _, err := in2.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	buf = buf[:2]
	if _, err := io.ReadFull(c2, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("A read %q, %v", buf, err)
	}
}

// TestMux_BlockedIn_RefusesAccepted: an accepted connection from a peer
// blocked In is closed right after its handshake.
func TestMux_BlockedIn_RefusesAccepted(t *testing.T) {
	t.Parallel()
	fb := NewFaults()
	a, b := newTestMux(t, nil), newTestMux(t, fb)
	fb.BlockDirection(In, a.self)
	c, err := a.dial(connFrames, b.self, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := readAll(t, c); got != "" {
		t.Fatalf("read %q", got)
	}
}
