package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// Meta is what every node advertises about itself in gossip (memberlist
// node metadata, at most 512 bytes), so that --join needs only one gossip
// address of any member.
type Meta struct {
	ID      string `json:"id"`
	Client  string `json:"client"`
	Cluster string `json:"cluster"`
	HTTP    string `json:"http,omitempty"`
	Gossip  string `json:"gossip"`
	// HasState is true once the node belongs to a bootstrapped Raft
	// cluster; a fresh node never bootstraps while any member has state.
	HasState bool `json:"has_state,omitempty"`
	// Leaving is set just before a graceful leave, so that peers can tell
	// a leave from a failure (memberlist's leave event does not say).
	Leaving bool `json:"leaving,omitempty"`
}

// Member statuses.
const (
	StatusAlive   = "alive"
	StatusSuspect = "suspect"
	StatusDead    = "dead"
	StatusLeft    = "left"
)

// Member is one gossip member as this node sees it.
type Member struct {
	Meta
	Status string    `json:"status"`
	Since  time.Time `json:"since"`
}

// membership tracks gossip members and tells listeners about changes. It
// is fed by memberlist's delegate callbacks, which must not block, so
// listeners are notified from a separate goroutine through a signal.
type membership struct {
	log     *zap.Logger
	mu      sync.Mutex
	members map[string]*Member
	self    func() Meta // current local metadata
	changed chan struct{}
}

func newMembership(log *zap.Logger, self func() Meta) *membership {
	return &membership{log: log, members: make(map[string]*Member), self: self, changed: make(chan struct{}, 1)}
}

// memberlist.Delegate: only metadata is used.
func (ms *membership) NodeMeta(limit int) []byte {
	b, _ := json.Marshal(ms.self())
	if len(b) > limit {
		ms.log.Error("node metadata too large for gossip", zap.Int("size", len(b)), zap.Int("limit", limit))
		return nil
	}
	return b
}
func (ms *membership) NotifyMsg([]byte)                           {}
func (ms *membership) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (ms *membership) LocalState(join bool) []byte                { return nil }
func (ms *membership) MergeRemoteState(buf []byte, join bool)     {}

// memberlist.EventDelegate.
func (ms *membership) NotifyJoin(n *memberlist.Node)   { ms.update(n, StatusAlive) }
func (ms *membership) NotifyUpdate(n *memberlist.Node) { ms.update(n, StatusAlive) }

// NotifyLeave fires for both failures and graceful leaves; the Leaving
// flag in the node's last metadata tells them apart.
func (ms *membership) NotifyLeave(n *memberlist.Node) { ms.update(n, StatusDead) }

func (ms *membership) update(n *memberlist.Node, status string) {
	var meta Meta
	if err := json.Unmarshal(n.Meta, &meta); err != nil || meta.ID == "" {
		// A member without our metadata is not a Flotilla node.
		ms.log.Warn("ignoring gossip member without metadata", zap.String("peer_id", n.Name))
		return
	}
	if status == StatusDead && meta.Leaving {
		status = StatusLeft
	}
	if meta.Gossip == "" {
		meta.Gossip = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	}
	ms.mu.Lock()
	old := ms.members[meta.ID]
	changed := old == nil || old.Status != status || old.Meta != meta
	if changed {
		ms.members[meta.ID] = &Member{Meta: meta, Status: status, Since: time.Now()}
	}
	ms.mu.Unlock()
	if !changed {
		return
	}
	ms.log.Info("member changed", zap.String("peer_id", meta.ID), zap.String("status", status),
		zap.String("cluster_addr", meta.Cluster), zap.String("client_addr", meta.Client))
	select {
	case ms.changed <- struct{}{}:
	default:
	}
}

// list returns the members sorted by id.
func (ms *membership) list() []Member {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	out := make([]Member, 0, len(ms.members))
	for _, m := range ms.members {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// get returns one member by id.
func (ms *membership) get(id string) (Member, bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m, ok := ms.members[id]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// newMemberlistConfig maps our Config onto memberlist's LAN defaults.
func newMemberlistConfig(cfg Config, ms *membership, log *zap.Logger) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeID
	host, port, err := splitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, err
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.AdvertiseGossipAddr != "" {
		ahost, aport, err := splitHostPort(cfg.AdvertiseGossipAddr)
		if err != nil {
			return nil, err
		}
		// memberlist needs an IP; a name (a compose service, say) is
		// resolved once at start.
		if net.ParseIP(ahost) == nil {
			ip, err := net.ResolveIPAddr("ip", ahost)
			if err != nil {
				return nil, fmt.Errorf("resolve advertise gossip host %q: %w", ahost, err)
			}
			ahost = ip.IP.String()
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ahost, aport
	}
	mc.Delegate = ms
	mc.Events = ms
	mc.Logger = newStdLogger(log)
	if cfg.GossipProbeInterval > 0 {
		mc.ProbeInterval = cfg.GossipProbeInterval
	}
	if cfg.GossipProbeTimeout > 0 {
		mc.ProbeTimeout = cfg.GossipProbeTimeout
	}
	if cfg.GossipInterval > 0 {
		mc.GossipInterval = cfg.GossipInterval
		mc.PushPullInterval = 20 * cfg.GossipInterval
	}
	if cfg.GossipSuspicionMult > 0 {
		mc.SuspicionMult = cfg.GossipSuspicionMult
	}
	// A node that comes back with a new address may reclaim its name once
	// the old incarnation has been dead this long (0 would mean never).
	if cfg.GossipToTheDeadTime > 0 {
		mc.GossipToTheDeadTime = cfg.GossipToTheDeadTime
	}
	mc.DeadNodeReclaimTime = cfg.GossipDeadNodeReclaim
	if mc.DeadNodeReclaimTime == 0 {
		mc.DeadNodeReclaimTime = 10 * time.Second
	}
	return mc, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	return host, port, nil
}
