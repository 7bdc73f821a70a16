package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// Forwarded request kinds owned by this package.
const (
	forwardRemove   = "cluster.remove"
	forwardTransfer = "cluster.transfer"
)

// Status is a node's view of the cluster, for `flotilla cluster status`.
type Status struct {
	NodeID             string         `json:"node_id"`
	State              string         `json:"state"`
	LeaderID           string         `json:"leader_id"`
	LeaderAddr         string         `json:"leader_addr"`
	Term               uint64         `json:"term"`
	CommitIndex        uint64         `json:"commit_index"`
	AppliedIndex       uint64         `json:"applied_index"`
	LastIndex          uint64         `json:"last_log_index"`
	LogSyncedIndex     uint64         `json:"log_synced_index"`
	LastSnapshotIndex  uint64         `json:"last_snapshot_index"`
	LastContactSeconds float64        `json:"last_contact_seconds"`
	Servers            []ServerStatus `json:"raft_configuration"`
	Members            []Member       `json:"members"`
	PeerLinks          []string       `json:"peer_links"`
	Removed            bool           `json:"removed,omitempty"`
}

// ServerStatus is one entry of the Raft configuration.
type ServerStatus struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
}

// Status reports this node's view of Raft and membership.
func (n *Node) Status() Status {
	stats := n.raft.Stats()
	u := func(k string) uint64 { v, _ := strconv.ParseUint(stats[k], 10, 64); return v }
	leaderID, leaderAddr := n.Leader()
	st := Status{
		NodeID:            n.cfg.NodeID,
		State:             n.raft.State().String(),
		LeaderID:          leaderID,
		LeaderAddr:        leaderAddr,
		Term:              u("term"),
		CommitIndex:       u("commit_index"),
		AppliedIndex:      n.raft.AppliedIndex(),
		LastIndex:         u("last_log_index"),
		LastSnapshotIndex: u("last_snapshot_index"),
		LogSyncedIndex:    n.logSyncedIndex(),
		Members:           n.members.list(),
		PeerLinks:         n.peers.connectedIDs(),
		Removed:           n.removed.Load(),
	}
	if lc := n.raft.LastContact(); !lc.IsZero() && st.State != raft.Leader.String() {
		st.LastContactSeconds = time.Since(lc).Seconds()
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Servers = append(st.Servers, ServerStatus{ID: string(s.ID), Address: string(s.Address), Suffrage: s.Suffrage.String()})
		}
	}
	return st
}

// logSyncedIndex is the last Raft log index on this node's disk. A log
// that syncs apart from its appends says how far (the segment log); the
// BoltDB log syncs in every append, so there it is the last index.
func (n *Node) logSyncedIndex() uint64 {
	if s, ok := n.store.(interface{ SyncedIndex() uint64 }); ok {
		return s.SyncedIndex()
	}
	last, _ := n.store.LastIndex()
	return last
}

// RemoveNode decommissions a node: it is removed from the Raft
// configuration (from any node: the request is forwarded to the leader),
// told to leave, and not re-added while it stays in gossip.
func (n *Node) RemoveNode(ctx context.Context, id string) error {
	_, err := n.Forward(ctx, forwardRemove, []byte(id))
	return err
}

// TransferLeadership asks the leader to hand leadership to the given node,
// or to the most up-to-date follower when id is empty.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	_, err := n.Forward(ctx, forwardTransfer, []byte(id))
	return err
}

func (n *Node) registerAdminHandlers() {
	n.HandleForward(forwardRemove, n.handleRemove)
	n.HandleForward(forwardTransfer, n.handleTransfer)
}

func (n *Node) handleRemove(ctx context.Context, req []byte) ([]byte, error) {
	id := string(req)
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, translate("read configuration", err)
	}
	found := false
	for _, s := range f.Configuration().Servers {
		found = found || string(s.ID) == id
	}
	if !found {
		return nil, fmt.Errorf("remove %s: %w", id, ErrUnknownNode)
	}
	if id == n.cfg.NodeID && len(f.Configuration().Servers) == 1 {
		return nil, fmt.Errorf("remove %s: the last voter: %w", id, ErrQuorum)
	}
	n.tombMu.Lock()
	n.tombstones[id] = time.Now()
	n.tombMu.Unlock()
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.timeout(ctx)).Error(); err != nil {
		return nil, translate("remove server", err)
	}
	n.log.Info("node decommissioned", zap.String("peer_id", id))
	if id != n.cfg.NodeID {
		_ = n.peers.send(id, kindRemoved, nil)
	}
	return nil, nil
}

func (n *Node) handleTransfer(ctx context.Context, req []byte) ([]byte, error) {
	id := string(req)
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		if id == n.cfg.NodeID {
			return nil, nil // already the leader
		}
		m, ok := n.members.get(id)
		if !ok || m.Cluster == "" {
			return nil, fmt.Errorf("transfer to %s: %w", id, ErrUnknownNode)
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(m.Cluster))
	}
	if err := f.Error(); err != nil {
		return nil, translate("transfer leadership", err)
	}
	return nil, nil
}

func (n *Node) isTombstoned(id string) bool {
	n.tombMu.Lock()
	defer n.tombMu.Unlock()
	_, ok := n.tombstones[id]
	return ok
}

// tombstone returns when id was decommissioned, if it was.
func (n *Node) tombstone(id string) (time.Time, bool) {
	n.tombMu.Lock()
	defer n.tombMu.Unlock()
	at, ok := n.tombstones[id]
	return at, ok
}

func (n *Node) clearTombstone(id string) {
	n.tombMu.Lock()
	defer n.tombMu.Unlock()
	delete(n.tombstones, id)
}

// onInternalFrame handles this package's own frame kinds.
func (n *Node) onInternalFrame(from string, kind byte, body []byte) {
	switch kind {
	case kindForwardReq, kindForwardRes:
		n.fwd.onFrame(from, kind, body)
	case kindRemoved:
		if n.removed.Swap(true) {
			return
		}
		n.log.Warn("this node was decommissioned; leaving the cluster", zap.String("leader_id", from))
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.leaveGossip(maxLeaveWait)
		}()
	}
}

// String renders the status as indented JSON.
func (s Status) String() string {
	b, _ := json.MarshalIndent(s, "", "  ")
	return string(b)
}

// Ready reports whether this node can serve: it knows a leader and has
// applied everything up to the commit index it last heard of. reason says
// what is missing when it cannot.
func (n *Node) Ready() (bool, string) {
	if n.removed.Load() {
		return false, "node was decommissioned"
	}
	if id, _ := n.Leader(); id == "" {
		return false, "no raft leader known"
	}
	commit, _ := strconv.ParseUint(n.raft.Stats()["commit_index"], 10, 64)
	if applied := n.raft.AppliedIndex(); applied < commit {
		return false, fmt.Sprintf("catching up: applied %d of %d", applied, commit)
	}
	return true, ""
}
