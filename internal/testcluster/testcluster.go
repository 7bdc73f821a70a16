// Package testcluster starts N real Flotilla cluster nodes in one test
// process: real TCP on 127.0.0.1 random ports, real bbolt files in
// t.TempDir(), tight Raft and gossip timings, and fault injection
// (Partition, Heal, Kill, Restart). Everything is torn down via t.Cleanup.
package testcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/internal/testutil"
	"github.com/flotilla/flotilla/metrics"
	"github.com/flotilla/flotilla/storage"
	"github.com/flotilla/flotilla/transport"
)

// Option configures a test cluster.
type Option func(*settings)

type settings struct {
	cfg     []func(i int, c *cluster.Config)
	clients bool
}

// WithConfig adjusts node i's cluster config before it starts.
func WithConfig(f func(i int, c *cluster.Config)) Option {
	return func(s *settings) { s.cfg = append(s.cfg, f) }
}

// WithClients gives every node a broker and a NATS client listener wired
// as cmd/flotilla wires them (routing between nodes, connect_urls from
// membership), so real nats.go clients can connect (Node.ClientURL).
func WithClients() Option {
	return func(s *settings) { s.clients = true }
}

// Node is one in-process node.
type Node struct {
	ID      string
	Index   int
	Dir     string
	Config  cluster.Config
	Cluster *cluster.Node
	Store   *storage.Store
	Reg     *prometheus.Registry
	Log     *zap.Logger
	Faults  *cluster.Faults
	// BootID is the machine boot id the node's state file records
	// (PowerLoss changes it to simulate a machine crash).
	BootID string
	// FSM is the node's replicated state machine.
	FSM *broker.FSM
	// With WithClients: the node's broker, JetStream service, client
	// listener and its URL (stable across Restart).
	Broker    *broker.Broker
	JetStream *broker.JetStream
	Server    *transport.Server
	ClientURL string
	running   bool
}

// Cluster is a set of nodes started together.
type Cluster struct {
	t     testing.TB
	mu    sync.Mutex
	nodes []*Node
	set   settings
}

// TestConfig returns cluster timings tight enough for fast tests but
// loose enough for -race on a 2-core machine.
func TestConfig() cluster.Config {
	c := cluster.DefaultConfig()
	c.HeartbeatTimeout = testutil.Scale(300 * time.Millisecond)
	c.ElectionTimeout = testutil.Scale(300 * time.Millisecond)
	c.LeaderLeaseTimeout = testutil.Scale(150 * time.Millisecond)
	c.CommitTimeout = 5 * time.Millisecond
	c.GossipProbeInterval = testutil.Scale(150 * time.Millisecond)
	c.GossipProbeTimeout = testutil.Scale(100 * time.Millisecond)
	c.GossipInterval = 30 * time.Millisecond
	c.GossipSuspicionMult = 2
	c.GossipDeadNodeReclaim = 200 * time.Millisecond
	c.ReconcileInterval = 200 * time.Millisecond
	c.ForwardHoldTimeout = testutil.Scale(5 * time.Second)
	c.ApplyTimeout = testutil.Scale(5 * time.Second)
	return c
}

// New starts n nodes with --bootstrap-expect n, all joining node 0's gossip
// address, and waits for a leader.
func New(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	q := &quietAfterTest{TB: t}
	// Registered before the teardown, so it runs after it: memberlist
	// timers that fire after the nodes closed must not log into a finished
	// test (zaptest panics on that).
	t.Cleanup(func() { q.done.Store(true) })
	t = q
	c := &Cluster{t: t}
	for _, o := range opts {
		o(&c.set)
	}
	for i := range n {
		node := &Node{ID: fmt.Sprintf("n%d", i+1), Index: i, Dir: t.TempDir(), Faults: cluster.NewFaults()}
		cfg := TestConfig()
		cfg.NodeID = node.ID
		cfg.DataDir = node.Dir
		// Port 0 everywhere: reserving ports up front races with other
		// tests' ephemeral ports. start records the bound addresses, and
		// Restart reuses them.
		cfg.ClusterAddr = "127.0.0.1:0"
		cfg.GossipAddr = "127.0.0.1:0"
		cfg.ClientAddr = "127.0.0.1:0"
		cfg.BootstrapExpect = n
		cfg.Faults = node.Faults
		for _, f := range c.set.cfg {
			f(i, &cfg)
		}
		node.Config = cfg
		c.nodes = append(c.nodes, node)
	}
	t.Cleanup(c.stopAll)
	// Each node joins the gossip addresses of those started before it;
	// with --bootstrap-expect n they bootstrap once all n see each other.
	var join []string
	for _, node := range c.nodes {
		node.Config.Join = append([]string(nil), join...)
		c.start(node)
		join = append(join, node.Config.GossipAddr)
	}
	c.WaitLeader()
	return c
}

// quietAfterTest drops log output once the cluster is torn down. Closing a
// node does not stop every memberlist goroutine and timer at once (probes
// in flight, suspicion timers), and a zaptest log from one after the test
// completed would panic the test binary.
type quietAfterTest struct {
	testing.TB
	done atomic.Bool
}

func (q *quietAfterTest) Logf(format string, args ...any) {
	if !q.done.Load() {
		q.TB.Logf(format, args...)
	}
}

func (q *quietAfterTest) Log(args ...any) {
	if !q.done.Load() {
		q.TB.Log(args...)
	}
}

func (c *Cluster) start(n *Node) {
	c.t.Helper()
	n.Log = zaptest.NewLogger(c.t, zaptest.Level(zap.InfoLevel)).With(zap.String("node_id", n.ID))
	n.Reg = prometheus.NewRegistry()
	m := metrics.New(n.Reg)
	store := c.openStore(n)
	n.Store = store
	if c.set.clients {
		c.startClients(n, m)
	}
	n.FSM = broker.NewFSM(store, n.Log)
	node, err := cluster.New(n.Config, n.FSM, m.Cluster, n.Log)
	if err != nil {
		c.t.Fatalf("%s: %v", n.ID, err)
	}
	if n.Broker != nil {
		node.SetFrameHandler(n.Broker)
		n.Broker.AttachMesh(node)
		srv := n.Server
		node.OnMembershipChange(func() { srv.SetConnectURLs(clientURLs(node.Members())) })
	}
	if err := node.Start(); err != nil {
		_ = store.Close()
		c.t.Fatalf("%s: start: %v", n.ID, err)
	}
	n.Cluster = node
	n.running = true
	if n.Broker != nil {
		n.JetStream = broker.NewJetStream(n.Broker, n.FSM, node, n.Log)
		if err := n.JetStream.Start(); err != nil {
			c.t.Fatalf("%s: start jetstream: %v", n.ID, err)
		}
	}
	n.Config.ClusterAddr = node.ClusterAddr()
	n.Config.GossipAddr = node.GossipAddr()
	if n.Server != nil {
		n.Server.SetConnectURLs(clientURLs(node.Members()))
	}
}

// startClients starts a broker and a client listener for n, as
// cmd/flotilla does; the caller attaches them to the cluster node.
func (c *Cluster) startClients(n *Node, m *metrics.Metrics) {
	c.t.Helper()
	n.Broker = broker.New(n.Log)
	tc := transport.DefaultConfig()
	tc.Addr = n.Config.ClientAddr
	tc.ServerID, tc.ServerName = "ID"+n.ID, n.ID
	srv, err := transport.New(tc, n.Broker, m.Transport, n.Log)
	if err != nil {
		c.t.Fatalf("%s: transport: %v", n.ID, err)
	}
	if err := srv.Start(); err != nil {
		c.t.Fatalf("%s: start transport: %v", n.ID, err)
	}
	n.Server = srv
	n.Config.ClientAddr = srv.Addr().String()
	n.ClientURL = "nats://" + n.Config.ClientAddr
}

func clientURLs(members []cluster.Member) []string {
	var urls []string
	for _, m := range members {
		if m.Status == cluster.StatusAlive && m.Client != "" {
			urls = append(urls, m.Client)
		}
	}
	return urls
}

// openStore opens the node's state file as the server does: lazy sync,
// and a file left open by a machine crash is discarded and rebuilt from the
// Raft snapshot and log.
func (c *Cluster) openStore(n *Node) *storage.Store {
	c.t.Helper()
	if n.BootID == "" {
		n.BootID = "boot-0"
	}
	path := filepath.Join(n.Dir, "state.db")
	opts := storage.Options{LazySync: true, BootID: n.BootID}
	n.Config.RestoreSnapshotOnStart = false
	store, err := storage.OpenWith(path, opts)
	if errors.Is(err, storage.ErrUntrusted) {
		if _, err := storage.Discard(path); err != nil {
			c.t.Fatalf("%s: discard state: %v", n.ID, err)
		}
		n.Config.RestoreSnapshotOnStart = true
		store, err = storage.OpenWith(path, opts)
	}
	if err != nil {
		c.t.Fatalf("%s: open store: %v", n.ID, err)
	}
	return store
}

func (c *Cluster) stopAll() {
	for _, n := range c.nodes {
		c.stop(n, false)
	}
}

func (c *Cluster) stop(n *Node, graceful bool) {
	if !n.running {
		return
	}
	n.running = false
	if graceful {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(5*time.Second))
		if n.Server != nil {
			_ = n.Server.Shutdown(ctx)
		}
		if n.JetStream != nil {
			n.JetStream.Shutdown()
		}
		_ = n.Cluster.Shutdown(ctx)
		cancel()
	} else {
		if n.Server != nil {
			n.Server.Close()
		}
		if n.JetStream != nil {
			n.JetStream.Shutdown()
		}
		_ = n.Cluster.Close()
	}
	if graceful {
		_ = n.Store.Close()
	} else {
		_ = n.Store.Crash() // as a killed process leaves it
	}
}

// Node returns node i (0-based).
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

// Nodes returns every node, running or not.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// ByID returns the node with the given id.
func (c *Cluster) ByID(id string) *Node {
	for _, n := range c.nodes {
		if n.ID == id {
			return n
		}
	}
	c.t.Fatalf("no node %q", id)
	return nil
}

// Running returns the running nodes.
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.nodes {
		if n.running {
			out = append(out, n)
		}
	}
	return out
}

// Leader returns the running node that is leader, or nil.
func (c *Cluster) Leader() *Node {
	for _, n := range c.Running() {
		if n.Cluster.IsLeader() {
			return n
		}
	}
	return nil
}

// WaitLeader waits until exactly one running node leads and every running,
// connected node agrees on it, and returns it.
func (c *Cluster) WaitLeader() *Node {
	c.t.Helper()
	var leader *Node
	testutil.Eventually(c.t, 15*time.Second, func() error {
		leader = nil
		for _, n := range c.Running() {
			if n.Cluster.IsLeader() {
				if leader != nil {
					return fmt.Errorf("two leaders: %s and %s", leader.ID, n.ID)
				}
				leader = n
			}
		}
		if leader == nil {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	return leader
}

// Followers returns the running nodes that are not leader.
func (c *Cluster) Followers() []*Node {
	var out []*Node
	for _, n := range c.Running() {
		if !n.Cluster.IsLeader() {
			out = append(out, n)
		}
	}
	return out
}

// WaitApplied waits until every running node has applied index idx.
func (c *Cluster) WaitApplied(idx uint64) {
	c.t.Helper()
	testutil.Eventually(c.t, 10*time.Second, func() error {
		for _, n := range c.Running() {
			if got := n.Cluster.AppliedIndex(); got < idx {
				return fmt.Errorf("%s applied %d < %d", n.ID, got, idx)
			}
		}
		return nil
	})
}

// Partition cuts the given nodes off from all others (both directions,
// Raft and frames), leaving links inside each side intact.
func (c *Cluster) Partition(ids ...string) {
	inside := map[string]bool{}
	for _, id := range ids {
		inside[id] = true
	}
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if inside[a.ID] != inside[b.ID] {
				a.Faults.Block(b.Config.ClusterAddr)
			}
		}
	}
}

// Heal restores every link.
func (c *Cluster) Heal() {
	for _, n := range c.nodes {
		n.Faults.UnblockAll()
	}
}

// Kill stops a node abruptly (no gossip leave, no leadership transfer),
// like a crash of the process; its files stay for Restart.
func (c *Cluster) Kill(id string) { c.stop(c.ByID(id), false) }

// PowerLoss kills a node as a machine crash would: its state file is not
// closed and the machine's boot id changes, so at Restart the node must not
// trust the file and rebuilds it from the Raft snapshot and log.
func (c *Cluster) PowerLoss(id string) {
	n := c.ByID(id)
	c.stop(n, false)
	n.BootID += "+"
}

// Stop stops a node gracefully.
func (c *Cluster) Stop(id string) { c.stop(c.ByID(id), true) }

// Restart starts a stopped node again on the same data dir and addresses,
// without --join: it must rejoin from its data dir.
func (c *Cluster) Restart(id string) *Node {
	c.t.Helper()
	n := c.ByID(id)
	if n.running {
		c.t.Fatalf("%s is running", id)
	}
	n.Config.Join = nil
	c.start(n)
	return n
}

// RestartKeepJoin restarts a stopped node with its Config as is (so a test
// can give it new addresses and a join list).
func (c *Cluster) RestartKeepJoin(id string) *Node {
	c.t.Helper()
	n := c.ByID(id)
	if n.running {
		c.t.Fatalf("%s is running", id)
	}
	c.start(n)
	return n
}

// TransferLeadership moves leadership away from the current leader and
// returns the new one.
func (c *Cluster) TransferLeadership() *Node {
	c.t.Helper()
	old := c.WaitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(10*time.Second))
	defer cancel()
	if err := old.Cluster.TransferLeadership(ctx, ""); err != nil {
		c.t.Fatalf("transfer leadership: %v", err)
	}
	var leader *Node
	testutil.Eventually(c.t, 10*time.Second, func() error {
		leader = c.Leader()
		if leader == nil || leader == old {
			return fmt.Errorf("leadership not moved")
		}
		return nil
	})
	return leader
}

// Add starts one more node that joins the cluster through node 0's gossip
// address (with --bootstrap-expect 1, as an operator adding a node would).
func (c *Cluster) Add() *Node {
	c.t.Helper()
	i := len(c.nodes)
	node := &Node{ID: fmt.Sprintf("n%d", i+1), Index: i, Dir: c.t.TempDir(), Faults: cluster.NewFaults()}
	cfg := TestConfig()
	cfg.NodeID = node.ID
	cfg.DataDir = node.Dir
	cfg.ClusterAddr = "127.0.0.1:0"
	cfg.GossipAddr = "127.0.0.1:0"
	cfg.ClientAddr = "127.0.0.1:0"
	cfg.BootstrapExpect = 1
	cfg.Join = []string{c.nodes[0].Cluster.GossipAddr()}
	cfg.Faults = node.Faults
	for _, f := range c.set.cfg {
		f(i, &cfg)
	}
	node.Config = cfg
	c.nodes = append(c.nodes, node)
	c.start(node)
	return node
}

// Voters returns the voter ids in the leader's Raft configuration.
func (c *Cluster) Voters() map[string]string {
	c.t.Helper()
	leader := c.WaitLeader()
	out := map[string]string{}
	for _, s := range leader.Cluster.Status().Servers {
		if s.Suffrage == "Voter" {
			out[s.ID] = s.Address
		}
	}
	return out
}

// WaitVoters waits until the leader's configuration has exactly these voters.
func (c *Cluster) WaitVoters(ids ...string) {
	c.t.Helper()
	testutil.Eventually(c.t, 15*time.Second, func() error {
		leader := c.Leader()
		if leader == nil {
			return fmt.Errorf("no leader")
		}
		got := map[string]bool{}
		for _, s := range leader.Cluster.Status().Servers {
			if s.Suffrage == "Voter" {
				got[s.ID] = true
			}
		}
		if len(got) != len(ids) {
			return fmt.Errorf("voters %v, want %v", got, ids)
		}
		for _, id := range ids {
			if !got[id] {
				return fmt.Errorf("voters %v, want %v", got, ids)
			}
		}
		return nil
	})
}

// Wipe deletes a stopped node's data dir (Raft log, snapshots, state), as
// if its disk was replaced. Restart it with RejoinEmpty.
func (c *Cluster) Wipe(id string) {
	c.t.Helper()
	n := c.ByID(id)
	if n.running {
		c.t.Fatalf("%s is running", id)
	}
	entries, err := os.ReadDir(n.Dir)
	if err != nil {
		c.t.Fatalf("wipe %s: %v", id, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(n.Dir, e.Name())); err != nil {
			c.t.Fatalf("wipe %s: %v", id, err)
		}
	}
}

// RejoinEmpty restarts a wiped node: it joins gossip through the running
// nodes and, already being a voter, is caught up by the leader (log
// entries or a snapshot).
func (c *Cluster) RejoinEmpty(id string) *Node {
	c.t.Helper()
	n := c.ByID(id)
	n.Config.Join = nil
	for _, o := range c.Running() {
		n.Config.Join = append(n.Config.Join, o.Config.GossipAddr)
	}
	return c.RestartKeepJoin(id)
}

// ForceSnapshot makes node id take a snapshot now and compact its log.
func (c *Cluster) ForceSnapshot(id string) {
	c.t.Helper()
	if err := c.ByID(id).Cluster.Snapshot(); err != nil {
		c.t.Fatalf("snapshot %s: %v", id, err)
	}
}
