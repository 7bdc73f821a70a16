package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/flotilla/flotilla/metrics"
)

// Node is one member of the cluster: it owns Raft, gossip membership, the
// cluster listener and the node-to-node links.
type Node struct {
	cfg Config
	log *zap.Logger
	m   *metrics.Cluster
	sm  StateMachine

	mux      *mux
	advAddr  string // advertised cluster address (raft address)
	store    logStore
	trans    *raft.NetworkTransport
	raft     *raft.Raft
	ml       *memberlist.Memberlist
	raftUp   atomic.Bool            // n.raft is set
	gossipMu sync.Mutex             // orders leaveGossip before memberlist's shutdown
	mlDown   bool                   // memberlist is shut down (guarded by gossipMu)
	mlAddr   atomic.Pointer[string] // advertised gossip address, set once memberlist exists
	members  *membership
	peers    *peers
	fwd      *forwarder
	notifyCh chan bool
	// reconcileCh wakes the leader loop after membership changes.
	reconcileCh chan struct{}
	tombMu      sync.Mutex
	tombstones  map[string]time.Time // decommissioned ids the leader must not re-add

	applied  atomic.Uint64
	early    *earlyAnswers
	snapBook *snapshotBook
	hasState atomic.Bool
	removed  atomic.Bool
	leaving  atomic.Bool

	handlerMu sync.Mutex
	handler   FrameHandler
	watchers  []func()
	leaderSub []chan bool

	shutdownCh   chan struct{}
	shutdownOnce sync.Once
	wg           sync.WaitGroup
}

// New validates cfg; Start brings the node up.
func New(cfg Config, sm StateMachine, m *metrics.Cluster, log *zap.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	n := &Node{
		cfg:         cfg,
		log:         log.Named("cluster"),
		m:           m,
		sm:          sm,
		notifyCh:    make(chan bool, 16),
		reconcileCh: make(chan struct{}, 1),
		tombstones:  make(map[string]time.Time),
		shutdownCh:  make(chan struct{}),
		early:       newEarlyAnswers(),
	}
	n.fwd = newForwarder(n)
	n.peers = newPeers(cfg.NodeID, n.log, m)
	n.peers.handler = n.frameHandler
	n.peers.onFrame = n.onInternalFrame
	n.registerAdminHandlers()
	return n, nil
}

// Start opens the Raft log, binds the cluster and gossip listeners, joins
// the configured members and bootstraps when the conditions are met. It
// returns once the node is serving; leadership comes later.
func (n *Node) Start() error {
	if err := n.start(); err != nil {
		n.closeResources()
		return err
	}
	return nil
}

func (n *Node) start() error {
	dir := filepath.Join(n.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create raft dir: %w", err)
	}
	ln, err := net.Listen("tcp", n.cfg.ClusterAddr)
	if err != nil {
		return fmt.Errorf("listen cluster %s: %w", n.cfg.ClusterAddr, err)
	}
	n.advAddr = n.cfg.AdvertiseClusterAddr
	if n.advAddr == "" {
		n.advAddr = ln.Addr().String()
		if ip := ln.Addr().(*net.TCPAddr).IP; ip.IsUnspecified() {
			_ = ln.Close()
			return fmt.Errorf("cluster address %s binds all interfaces: set an advertise cluster address", n.cfg.ClusterAddr)
		}
	}
	n.mux = newMux(ln, n.advAddr, n.cfg.Faults, n.log)
	n.peers.mux = n.mux
	n.mux.frames = n.peers.serveInbound
	n.mux.wg.Add(1)
	go n.mux.serve()

	hlog := newHCLogger(n.log.Named("raft"))
	var kind string
	n.store, kind, err = openLogStore(dir, n.cfg.RaftLogStore)
	if err != nil {
		return err
	}
	if s, ok := n.store.(*segStore); ok {
		s.setMetrics(n.m)
		if n.cfg.Faults != nil {
			s.setBeforeSync(n.cfg.Faults.waitLogSync)
		}
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: raftLayer{m: n.mux}, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
		MaxRPCsInFlight: raftMaxInFlight,
	})
	hasState, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	n.hasState.Store(hasState)
	// The leader reads recent entries back for every AppendEntries it
	// sends; the cache serves them from memory instead of the log file.
	logs := newLogCache(n.store, logCacheEntries, logCacheBytes)
	n.snapBook = &snapshotBook{dir: dir, syncBytes: n.cfg.SnapshotSyncBytes, rate: n.cfg.SnapshotWriteRate,
		stop: n.shutdownCh, m: n.m, log: n.log.Named("snapshot")}
	n.snapBook.newRound()
	fsm := &fsmAdapter{sm: n.sm, applied: n.applied.Store, book: n.snapBook, early: n.early}
	n.raft, err = raft.NewRaft(n.raftConfig(), fsm, logs, n.store, snaps, n.trans)
	if err == nil {
		// Peers' frames (forwarded requests) are served from the moment
		// the cluster port listens, which is before Raft exists: readers
		// check raftUp first (the atomic publishes n.raft to them).
		n.raftUp.Store(true)
	}
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}

	n.members = newMembership(n.log, n.localMeta)
	mlc, err := newMemberlistConfig(n.cfg, n.members, n.log.Named("gossip"))
	if err != nil {
		return fmt.Errorf("gossip config: %w", err)
	}
	gt, err := newGossipTransport(mlc, n.cfg.Faults)
	if err != nil {
		return fmt.Errorf("start gossip on %s: %w", n.cfg.GossipAddr, err)
	}
	n.ml, err = memberlist.Create(mlc)
	if err != nil {
		_ = gt.Shutdown() // ours: memberlist leaves a given transport open
		return fmt.Errorf("start gossip on %s: %w", n.cfg.GossipAddr, err)
	}
	gt.open() // memberlist has marked this node alive: let gossip in
	mlAddr := n.ml.LocalNode().Address()
	n.mlAddr.Store(&mlAddr)
	n.log.Info("cluster node started", zap.String("cluster_addr", n.advAddr),
		zap.String("gossip_addr", n.GossipAddr()), zap.Bool("has_state", hasState), zap.String("raft_log_store", kind))

	n.wg.Add(6)
	go n.snapshotLoop()
	go n.observeLeadership()
	go n.membershipLoop()
	go n.statsLoop()
	go n.joinLoop()
	go n.reconnectLoop()
	n.maybeBootstrap()
	return nil
}

// raftMaxInFlight is how many AppendEntries the leader pipelines to each
// follower (hashicorp/raft's default is 2). A follower takes the next ones
// while syncing the previous (third_party/hashicorp/raft, FLOTILLA.md), so
// more in flight means more of them answered by one sync.
const raftMaxInFlight = 16

// raftConfig maps Config onto hashicorp/raft's.
func (n *Node) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.Logger = newHCLogger(n.log.Named("raft"))
	rc.NotifyCh = n.notifyCh
	// BatchApplyCh stays off: with a buffered apply channel a future
	// queued just before shutdown is never answered, and Apply's timeout no
	// longer holds. The leader still drains concurrent proposals into one
	// append; batching many messages per entry is the broker's job.
	// The state machine is durable and skips entries at or below its
	// stored index, so restarts must not rebuild it from a snapshot.
	rc.NoSnapshotRestoreOnStart = !n.cfg.RestoreSnapshotOnStart
	set := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	set(&rc.HeartbeatTimeout, n.cfg.HeartbeatTimeout)
	set(&rc.ElectionTimeout, n.cfg.ElectionTimeout)
	set(&rc.LeaderLeaseTimeout, n.cfg.LeaderLeaseTimeout)
	set(&rc.CommitTimeout, n.cfg.CommitTimeout)
	// Snapshots are triggered by the node (snapshotLoop), never by raft's
	// entry count: its check runs rarely and can never fire.
	rc.SnapshotInterval = time.Hour
	rc.SnapshotThreshold = math.MaxUint64
	if n.cfg.TrailingLogs > 0 {
		rc.TrailingLogs = n.cfg.TrailingLogs
	}
	return rc
}

// localMeta is this node's gossip metadata.
func (n *Node) localMeta() Meta {
	return Meta{
		ID:       n.cfg.NodeID,
		Client:   n.cfg.ClientAddr,
		Cluster:  n.advAddr,
		HTTP:     n.cfg.HTTPAddr,
		Gossip:   n.gossipAdvertised(),
		HasState: n.hasState.Load(),
		Leaving:  n.leaving.Load(),
	}
}

// gossipAdvertised is read from a copy taken after memberlist started:
// memberlist rewrites its local node under its own lock (UpdateNode), so
// reading LocalNode() from other goroutines would race.
func (n *Node) gossipAdvertised() string {
	if a := n.mlAddr.Load(); a != nil {
		return *a
	}
	return ""
}

// GossipAddr returns the advertised gossip address (useful with port 0).
func (n *Node) GossipAddr() string { return n.gossipAdvertised() }

// ClusterAddr returns the advertised cluster (Raft) address.
func (n *Node) ClusterAddr() string { return n.advAddr }

// ID returns the node id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Apply proposes a command and returns the state machine's result. It must
// run on the leader (ErrNotLeader otherwise); use Forward to reach it.
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) {
	return n.Propose(ctx, cmd).Wait()
}

// Proposal is a command handed to Raft whose outcome is still to come.
type Proposal struct {
	n     *Node
	f     raft.ApplyFuture
	start time.Time
	err   error
	early chan any // the state machine's early answer (Entry.Early)
	key   *byte    // its key in n.early, if registered
}

// Propose hands a command to Raft and returns without waiting for it to be
// committed: commands proposed one after another by one goroutine are
// committed in that order, so a caller can keep several in flight and
// still keep their order. It waits only while Raft's leader loop is busy
// taking the previous one (ctx bounds that wait). It must run on the
// leader (the proposal fails with ErrNotLeader otherwise).
func (n *Node) Propose(ctx context.Context, cmd []byte) *Proposal {
	if !n.IsLeader() {
		return &Proposal{err: ErrNotLeader}
	}
	p := &Proposal{n: n, start: time.Now(), early: make(chan any, 1)}
	n.early.add(cmd, p) // before Raft can apply it
	p.f = n.raft.Apply(cmd, n.timeout(ctx))
	return p
}

// Wait returns the state machine's result of the proposal once it is
// applied on this node, or why it was not (ErrNotLeader: certainly not
// committed; ErrLeadershipLost: unknown). It returns early, with
// ErrShutdown, when the node shuts down. A result the state machine
// handed over early (Entry.Early) is returned as soon as it is given.
func (p *Proposal) Wait() (any, error) {
	if p.err != nil {
		return nil, p.err
	}
	defer p.n.early.drop(p)
	early, ok, err := p.n.waitFuture(p.f, p.early)
	if err != nil {
		return nil, translate("apply", err)
	}
	p.n.m.ApplyDuration.Observe(time.Since(p.start).Seconds())
	if ok {
		return early, nil
	}
	return p.f.Response(), nil
}

// Barrier waits until every entry committed before it has been applied here
// (only on the leader).
func (n *Node) Barrier(ctx context.Context) error {
	if !n.raftUp.Load() {
		return ErrNotLeader
	}
	_, _, err := n.waitFuture(n.raft.Barrier(n.timeout(ctx)), nil)
	return translate("barrier", err)
}

// waitFuture waits for a Raft future, but no longer than the node runs.
// hashicorp/raft's timeout bounds only the enqueueing, and a future whose
// entry was already handed to the FSM goroutine when Raft shut down is
// never answered; a caller waiting on it held up Close (a forwarded
// publish kept a killed test node from closing for 14 minutes). A value
// on early (nil: none) ends the wait too: ok reports that it did.
func (n *Node) waitFuture(f raft.Future, early <-chan any) (v any, ok bool, err error) {
	done := make(chan error, 1)
	go func() { done <- f.Error() }() // ends with the future, or never if Raft dropped it
	select {
	case v = <-early:
		return v, true, nil
	case err = <-done:
		return nil, false, err
	case <-n.shutdownCh:
		return nil, false, raft.ErrRaftShutdown
	}
}

// VerifyLeader confirms with a quorum that this node still leads.
func (n *Node) VerifyLeader(ctx context.Context) error {
	return translate("verify leader", n.raft.VerifyLeader().Error())
}

// Snapshot takes a snapshot now and compacts the log behind it (keeping
// TrailingLogs entries); followers further behind then catch up by
// installing the snapshot.
func (n *Node) Snapshot() error {
	return translate("snapshot", n.raft.Snapshot().Error())
}

// AppliedIndex is the last index applied to the state machine.
func (n *Node) AppliedIndex() uint64 { return n.applied.Load() }

// Leader returns the leader's id and advertised cluster address, empty when
// none is known.
func (n *Node) Leader() (id, addr string) {
	if !n.raftUp.Load() {
		return "", ""
	}
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raftUp.Load() && n.raft.State() == raft.Leader }

// LeaderCh returns a channel that receives true when this node becomes
// leader and false when it stops being leader. Slow readers miss edges
// rather than block Raft, so readers should re-check IsLeader.
func (n *Node) LeaderCh() <-chan bool {
	ch := make(chan bool, 4)
	n.handlerMu.Lock()
	n.leaderSub = append(n.leaderSub, ch)
	n.handlerMu.Unlock()
	return ch
}

// SetFrameHandler installs the receiver of user frames and peer events.
func (n *Node) SetFrameHandler(h FrameHandler) {
	n.handlerMu.Lock()
	n.handler = h
	n.handlerMu.Unlock()
}

func (n *Node) frameHandler() FrameHandler {
	n.handlerMu.Lock()
	defer n.handlerMu.Unlock()
	return n.handler
}

// OnMembershipChange registers f to run (on the membership goroutine) after
// every change in gossip membership, e.g. to refresh connect_urls.
func (n *Node) OnMembershipChange(f func()) {
	n.handlerMu.Lock()
	n.watchers = append(n.watchers, f)
	n.handlerMu.Unlock()
}

// Send queues a frame of a user kind (>= FirstUserKind) for one peer.
func (n *Node) Send(peerID string, kind byte, body []byte) error {
	if kind < FirstUserKind {
		return fmt.Errorf("send kind %d: reserved", kind)
	}
	return n.peers.send(peerID, kind, body)
}

// Broadcast queues a frame of a user kind for every connected peer.
func (n *Node) Broadcast(kind byte, body []byte) {
	if kind >= FirstUserKind {
		n.peers.broadcast(kind, body)
	}
}

// Members returns the gossip members (including this node) by id.
func (n *Node) Members() []Member { return n.members.list() }

func (n *Node) timeout(ctx context.Context) time.Duration {
	t := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); left < t {
			t = max(left, time.Millisecond)
		}
	}
	return t
}

// translate maps raft's errors onto this package's sentinels.
func translate(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("%s: %w", op, ErrNotLeader)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%s: %w", op, ErrLeadershipLost)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%s: %w", op, ErrTimeout)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%s: %w", op, ErrShutdown)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

// Shutdown leaves gossip gracefully (a plain stop never removes the node
// from the Raft configuration), hands leadership over if this node leads,
// stops Raft and closes every link and file.
func (n *Node) Shutdown(ctx context.Context) error {
	var err error
	n.shutdownOnce.Do(func() {
		if n.raft != nil && n.IsLeader() {
			if f := n.raft.LeadershipTransfer(); f.Error() != nil {
				n.log.Info("leadership transfer before shutdown failed", zap.Error(f.Error()))
			}
		}
		n.leaveGossip(min(n.timeout(ctx), maxLeaveWait))
		close(n.shutdownCh)
		err = n.closeResources()
		n.wg.Wait()
		n.log.Info("cluster node stopped")
	})
	return err
}

// closeResources releases whatever Start managed to open.
func (n *Node) closeResources() error {
	var errs []error
	if n.peers != nil {
		n.peers.close()
	}
	if n.raft != nil {
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
	}
	if n.ml != nil {
		n.gossipMu.Lock()
		n.mlDown = true
		n.gossipMu.Unlock()
		if err := n.ml.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("gossip shutdown: %w", err))
		}
	}
	if n.mux != nil {
		n.mux.close()
	}
	if n.trans != nil {
		_ = n.trans.Close()
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Close stops the node abruptly, as a crash would: no gossip leave and no
// leadership transfer (peers find out by failure detection). Files are
// closed cleanly so the same data dir can be reopened.
func (n *Node) Close() error {
	var err error
	n.shutdownOnce.Do(func() {
		close(n.shutdownCh)
		err = n.closeResources()
		n.wg.Wait()
		n.log.Info("cluster node halted")
	})
	return err
}

// maxLeaveWait bounds each gossip step of a graceful leave. memberlist
// waits for its broadcast to go out, which never happens when the peers are
// already gone (the last node of a cluster stopping).
const maxLeaveWait = time.Second

// leaveGossip announces a graceful leave: first the Leaving flag in the
// metadata (so peers record "left", not "dead"), then memberlist's Leave.
func (n *Node) leaveGossip(timeout time.Duration) {
	// gossipMu orders a leave (a decommissioned node leaves from its own
	// goroutine) before memberlist's shutdown: Leave after Shutdown panics.
	n.gossipMu.Lock()
	defer n.gossipMu.Unlock()
	if n.ml == nil || n.mlDown || n.leaving.Swap(true) {
		return
	}
	if !n.gossipSelfAlive() {
		// UpdateNode and Leave panic once the local node is gone from
		// memberlist's map; the peers hold this node as dead already.
		n.log.Warn("not announcing the leave: this node is not alive in its own gossip membership")
		return
	}
	if err := n.ml.UpdateNode(timeout); err != nil {
		n.log.Warn("gossip metadata update failed", zap.Error(err))
	}
	if err := n.ml.Leave(timeout); err != nil {
		n.log.Warn("gossip leave failed", zap.Error(err))
	}
}
