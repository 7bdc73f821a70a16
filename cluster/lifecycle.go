package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

const kindRemoved byte = 4 // leader to a decommissioned node: leave the cluster

// observeLeadership follows this node's own leadership edges (Raft's
// NotifyCh): it runs the leader loop while leading and fans the edges out
// to LeaderCh subscribers.
func (n *Node) observeLeadership() {
	defer n.wg.Done()
	var stopLeader chan struct{}
	var leaderDone chan struct{}
	stop := func() {
		if stopLeader != nil {
			close(stopLeader)
			<-leaderDone
			stopLeader = nil
		}
	}
	defer stop()
	for {
		select {
		case <-n.shutdownCh:
			return
		case leader := <-n.notifyCh:
			n.m.LeaderChanges.Inc()
			n.handlerMu.Lock()
			subs := append([]chan bool(nil), n.leaderSub...)
			n.handlerMu.Unlock()
			for _, ch := range subs {
				select {
				case ch <- leader:
				default:
				}
			}
			if leader && stopLeader == nil {
				n.log.Info("cluster leadership acquired", zap.Uint64("term", n.term()))
				stopLeader, leaderDone = make(chan struct{}), make(chan struct{})
				go n.leaderLoop(stopLeader, leaderDone)
			} else if !leader {
				n.log.Info("cluster leadership lost")
				stop()
			}
		}
	}
}

func (n *Node) term() uint64 {
	t, _ := strconv.ParseUint(n.raft.Stats()["term"], 10, 64)
	return t
}

// leaderLoop reconciles gossip membership with the Raft configuration while
// this node leads: on every membership change and periodically.
func (n *Node) leaderLoop(stop, done chan struct{}) {
	defer close(done)
	// Reconciling reads only Raft's own configuration, not FSM state, so
	// no barrier is needed before it.
	tick := time.NewTicker(n.reconcileInterval())
	defer tick.Stop()
	for {
		n.reconcile()
		select {
		case <-stop:
			return
		case <-n.shutdownCh:
			return
		case <-tick.C:
		case <-n.reconcileCh:
		}
	}
}

func (n *Node) reconcileInterval() time.Duration {
	if n.cfg.ReconcileInterval > 0 {
		return n.cfg.ReconcileInterval
	}
	return 5 * time.Second
}

// reconcile adds live members that are not voters (or whose address
// changed) and reaps members dead longer than ReapAfter, never going below
// a quorum of the current voters. A gracefully left member stays: a restart
// is not a decommission.
func (n *Node) reconcile() {
	if !n.IsLeader() {
		return
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		n.log.Warn("read raft configuration", zap.Error(err))
		return
	}
	servers := map[string]raft.Server{}
	for _, s := range f.Configuration().Servers {
		servers[string(s.ID)] = s
	}
	for _, m := range n.members.list() {
		if m.Status != StatusAlive || m.Cluster == "" || m.ID == n.cfg.NodeID {
			continue
		}
		s, ok := servers[m.ID]
		if ok && string(s.Address) == m.Cluster && s.Suffrage == raft.Voter {
			continue
		}
		if at, ok := n.tombstone(m.ID); ok {
			if m.HasState || m.Leaving || !m.Since.After(at) {
				continue // the decommissioned incarnation: never re-added
			}
			// Same id, empty data dir, back in gossip after the removal:
			// the operator wiped the node and brought it back, which is
			// how a removed node is re-added.
			n.clearTombstone(m.ID)
		}
		n.log.Info("adding voter", zap.String("peer_id", m.ID), zap.String("cluster_addr", m.Cluster), zap.Bool("address_update", ok))
		if err := n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.Cluster), 0, n.cfg.ApplyTimeout).Error(); err != nil {
			n.log.Warn("add voter failed", zap.String("peer_id", m.ID), zap.Error(err))
		}
	}
	if n.cfg.ReapAfter > 0 {
		n.reap(servers)
	}
}

func (n *Node) reap(servers map[string]raft.Server) {
	voters := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	for id := range servers {
		m, ok := n.members.get(id)
		if !ok || id == n.cfg.NodeID || (m.Status != StatusDead && m.Status != StatusLeft) || time.Since(m.Since) < n.cfg.ReapAfter {
			continue
		}
		if voters-1 < voters/2+1 {
			n.log.Warn("not reaping dead member: quorum would break", zap.String("peer_id", id), zap.Int("voters", voters))
			return
		}
		n.log.Info("reaping dead member", zap.String("peer_id", id), zap.Duration("dead_for", time.Since(m.Since)))
		if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error(); err != nil {
			n.log.Warn("reap failed", zap.String("peer_id", id), zap.Error(err))
			return
		}
		voters--
	}
}

// membershipLoop reacts to gossip changes: node-to-node links follow live
// members, peers that died or left are dropped, watchers run, and the known
// peers file is refreshed for rejoining after a restart.
func (n *Node) membershipLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-n.members.changed:
		}
		counts := map[string]float64{StatusAlive: 0, StatusSuspect: 0, StatusDead: 0, StatusLeft: 0}
		for _, m := range n.members.list() {
			counts[m.Status]++
			if m.ID == n.cfg.NodeID {
				continue
			}
			switch m.Status {
			case StatusAlive, StatusSuspect:
				n.peers.ensure(m.ID, m.Cluster)
			default:
				if n.peers.remove(m.ID) {
					if h := n.frameHandler(); h != nil {
						h.PeerDown(m.ID)
					}
				}
			}
		}
		for s, c := range counts {
			n.m.Members.WithLabelValues(s).Set(c)
		}
		n.saveKnownPeers()
		n.maybeBootstrap()
		select {
		case n.reconcileCh <- struct{}{}:
		default:
		}
		n.handlerMu.Lock()
		ws := append([]func(){}, n.watchers...)
		n.handlerMu.Unlock()
		for _, w := range ws {
			w()
		}
	}
}

// maybeBootstrap bootstraps the first Raft configuration when this node has
// no Raft state and the expected members are visible. Every node computes
// the same sorted configuration, so all nodes can run the same command. A
// node never bootstraps while any member already has state: it waits for
// the leader to add it.
func (n *Node) maybeBootstrap() {
	if n.hasState.Load() {
		return
	}
	var servers []raft.Server
	if n.cfg.BootstrapExpect == 1 && len(n.cfg.Join) == 0 {
		servers = []raft.Server{{ID: raft.ServerID(n.cfg.NodeID), Address: raft.ServerAddress(n.advAddr)}}
	} else {
		alive := 0
		for _, m := range n.members.list() {
			if m.HasState {
				return
			}
			if m.Status == StatusAlive && m.Cluster != "" {
				alive++
				servers = append(servers, raft.Server{ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.Cluster)})
			}
		}
		if alive < n.cfg.BootstrapExpect {
			return
		}
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].ID < servers[j].ID })
	n.log.Info("bootstrapping cluster", zap.Int("voters", len(servers)))
	if err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && err != raft.ErrCantBootstrap {
		n.log.Error("bootstrap failed", zap.Error(err))
		return
	}
	n.markHasState()
}

// markHasState advertises that this node belongs to a Raft cluster.
func (n *Node) markHasState() {
	if n.hasState.Swap(true) {
		return
	}
	if err := n.ml.UpdateNode(n.cfg.ApplyTimeout); err != nil {
		n.log.Warn("gossip metadata update failed", zap.Error(err))
	}
}

// joinLoop joins the configured members, or after a restart the members
// this node knew, retrying until one answers (nodes may start in any order).
func (n *Node) joinLoop() {
	defer n.wg.Done()
	addrs := append([]string(nil), n.cfg.Join...)
	if n.hasState.Load() {
		addrs = append(addrs, n.loadKnownPeers()...)
	}
	if len(addrs) == 0 {
		return
	}
	wait := 50 * time.Millisecond
	for {
		joined, err := n.ml.Join(addrs)
		if joined > 0 {
			n.log.Info("joined cluster", zap.Int("contacted", joined))
			return
		}
		n.log.Debug("join attempt failed", zap.Strings("join", addrs), zap.Error(err))
		select {
		case <-n.shutdownCh:
			return
		case <-time.After(wait): // retry pacing
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// reconnectInterval is how often reconnectLoop retries dead members.
const reconnectInterval = 3 * time.Second

// reconnectLoop periodically joins the gossip addresses of members this
// node considers dead (not those that left). Once both sides of a
// partition have declared each other dead, memberlist never contacts the
// other side again by itself, so without this a healed partition would
// leave gossip, and the peer links and connect_urls that follow it, split
// for good (Raft recovers on its own: it dials by address). Serf's
// reconnect loop does the same for the same reason.
func (n *Node) reconnectLoop() {
	defer n.wg.Done()
	t := time.NewTicker(reconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-t.C:
		}
		var dead []string
		for _, m := range n.members.list() {
			if m.ID != n.cfg.NodeID && m.Status == StatusDead && m.Gossip != "" {
				dead = append(dead, m.Gossip)
			}
		}
		if len(dead) == 0 {
			continue
		}
		if joined, err := n.ml.Join(dead); joined > 0 {
			n.log.Info("reconnected to dead members", zap.Int("contacted", joined))
		} else {
			n.log.Debug("reconnect attempt failed", zap.Strings("gossip_addrs", dead), zap.Error(err))
		}
	}
}

// statsLoop mirrors raft.Stats() into the metrics and notices when this
// node has been added to a configuration by a leader.
func (n *Node) statsLoop() {
	n.every(time.Second, func() {
		n.updateStats()
		n.checkGossipSelf()
	})
}

// every runs fn every d until the node shuts down (a node goroutine: the
// caller has added it to n.wg).
func (n *Node) every(d time.Duration, fn func()) {
	defer n.wg.Done()
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-tick.C:
		}
		fn()
	}
}

// checkGossipSelf announces this node again if its own memberlist no
// longer lists it as alive. The gossip transport's start gate
// (newGossipTransport) exists so this cannot happen; if it still does, the
// node would be cut off for good: memberlist never refutes suspicion or
// death of a node it holds as not alive, and reaps the dead local entry
// GossipToTheDeadTime later, after which UpdateNode and Leave panic. An
// alive announcement with a fresh incarnation revives the entry while it
// exists (this check runs every second; the reap comes after 30 s).
func (n *Node) checkGossipSelf() {
	n.gossipMu.Lock()
	defer n.gossipMu.Unlock()
	if n.ml == nil || n.mlDown || n.leaving.Load() || n.gossipSelfAlive() {
		return
	}
	n.log.Error("this node is not alive in its own gossip membership; announcing it again")
	if err := n.ml.UpdateNode(maxLeaveWait); err != nil {
		n.log.Warn("gossip re-announcement not confirmed", zap.Error(err))
	}
}

// gossipSelfAlive reports whether memberlist lists this node among its live
// members. Only names are read: memberlist rewrites the nodes it hands out.
func (n *Node) gossipSelfAlive() bool {
	for _, m := range n.ml.Members() {
		if m.Name == n.cfg.NodeID {
			return true
		}
	}
	return false
}

func (n *Node) updateStats() {
	st := n.Status()
	n.m.RaftState.Set(float64(raftStateNumber(st.State)))
	if st.State == raft.Leader.String() {
		n.m.IsLeader.Set(1)
	} else {
		n.m.IsLeader.Set(0)
	}
	n.m.Term.Set(float64(st.Term))
	n.m.CommitIndex.Set(float64(st.CommitIndex))
	n.m.AppliedIndex.Set(float64(st.AppliedIndex))
	n.m.LastIndex.Set(float64(st.LastIndex))
	n.m.LastContact.Set(st.LastContactSeconds)
	voters, self := 0, false
	for _, s := range st.Servers {
		if s.Suffrage == raft.Voter.String() {
			voters++
		}
		self = self || s.ID == n.cfg.NodeID
	}
	n.m.Voters.Set(float64(voters))
	if self && !n.hasState.Load() {
		n.markHasState()
	}
}

func raftStateNumber(s string) int {
	switch s {
	case raft.Candidate.String():
		return 1
	case raft.Leader.String():
		return 2
	case raft.Shutdown.String():
		return 3
	default:
		return 0
	}
}

// The known-peers file lets a restarted node rejoin gossip without --join.
func (n *Node) knownPeersPath() string { return filepath.Join(n.cfg.DataDir, "raft", "peers.json") }

func (n *Node) saveKnownPeers() {
	var addrs []string
	for _, m := range n.members.list() {
		if m.ID != n.cfg.NodeID && m.Gossip != "" && m.Status != StatusLeft {
			addrs = append(addrs, m.Gossip)
		}
	}
	if len(addrs) == 0 {
		return
	}
	b, _ := json.Marshal(addrs)
	tmp := n.knownPeersPath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		n.log.Warn("save known peers", zap.Error(err))
		return
	}
	if err := os.Rename(tmp, n.knownPeersPath()); err != nil {
		n.log.Warn("save known peers", zap.Error(err))
	}
}

func (n *Node) loadKnownPeers() []string {
	b, err := os.ReadFile(n.knownPeersPath())
	if err != nil {
		return nil
	}
	var addrs []string
	if err := json.Unmarshal(b, &addrs); err != nil {
		n.log.Warn("known peers file is corrupt", zap.Error(err))
		return nil
	}
	return addrs
}
