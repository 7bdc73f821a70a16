package metrics

import "github.com/prometheus/client_golang/prometheus"

// Cluster holds the Raft, membership and node-to-node collectors. Raft
// values are polled from raft.Stats() by the cluster package rather than
// bridged from a second metrics library.
type Cluster struct {
	RaftState       prometheus.Gauge // 0 follower, 1 candidate, 2 leader, 3 shutdown
	IsLeader        prometheus.Gauge
	Term            prometheus.Gauge
	CommitIndex     prometheus.Gauge
	AppliedIndex    prometheus.Gauge
	LastIndex       prometheus.Gauge
	LastContact     prometheus.Gauge // seconds since the leader was last heard from
	LeaderChanges   prometheus.Counter
	Voters          prometheus.Gauge
	Members         *prometheus.GaugeVec // by status: alive, suspect, dead, left
	PeerConnections prometheus.Gauge
	FramesOut       prometheus.Counter
	FramesIn        prometheus.Counter
	FramesDropped   prometheus.Counter
	Forwarded       *prometheus.CounterVec // by result: ok, error, timeout
	ApplyDuration   prometheus.Histogram
	// Raft snapshots written by this node (cluster/snapshot_policy.go).
	Snapshots             prometheus.Counter
	SnapshotBytes         prometheus.Gauge
	SnapshotSeconds       prometheus.Gauge
	LogBytesSinceSnapshot prometheus.Gauge
	// The Raft log's appends and syncs (the segment log only): appends
	// per sync is how well group commit works on this node.
	LogAppends      prometheus.Counter
	LogSyncs        prometheus.Counter
	LogSyncedBytes  prometheus.Counter
	LogSyncDuration prometheus.Histogram
}

// NewCluster registers the cluster collectors on reg.
func NewCluster(reg prometheus.Registerer) *Cluster {
	g := func(name, help string) prometheus.Gauge { return gauge(reg, "cluster", name, help) }
	f := func(name, help string) prometheus.Counter { return counter(reg, "cluster", name, help) }
	c := &Cluster{
		RaftState:       g("raft_state", "Raft state of this node: 0 follower, 1 candidate, 2 leader, 3 shutdown."),
		IsLeader:        g("is_leader", "1 if this node is the Raft leader."),
		Term:            g("raft_term", "Current Raft term."),
		CommitIndex:     g("commit_index", "Raft commit index."),
		AppliedIndex:    g("applied_index", "Last Raft index applied to the state machine."),
		LastIndex:       g("last_log_index", "Last index in the Raft log."),
		LastContact:     g("last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader)."),
		LeaderChanges:   f("leader_changes_total", "Leader changes observed by this node."),
		Voters:          g("voters", "Voters in the Raft configuration."),
		PeerConnections: g("peer_connections", "Open outbound node-to-node frame connections."),
		FramesOut:       f("frame_writes_total", "Writes of queued node-to-node frames (each carries one or more frames)."),
		FramesIn:        f("frames_in_total", "Node-to-node frames received."),
		FramesDropped:   f("frames_dropped_total", "Node-to-node frames dropped because the peer was unreachable or its buffer was full."),
		Snapshots:       f("snapshots_total", "Raft snapshots written by this node."),
		SnapshotBytes:   g("snapshot_bytes", "Size of the last Raft snapshot written by this node."),
		SnapshotSeconds: g("snapshot_seconds", "Time the last Raft snapshot took to write."),
		LogBytesSinceSnapshot: g("log_bytes_since_snapshot",
			"Command bytes applied since this node's last snapshot (since start when it has written none since)."),
		LogAppends:     f("log_appends_total", "Appends to the Raft log (one or more entries each)."),
		LogSyncs:       f("log_syncs_total", "Syncs of the Raft log; each makes every append since the previous one durable."),
		LogSyncedBytes: f("log_synced_bytes_total", "Bytes of Raft log records made durable by the log's syncs."),
		LogSyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "cluster", Name: "log_sync_duration_seconds",
			Help: "Time one sync of the Raft log took (fdatasync of the segments written to).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
		Members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "cluster", Name: "members",
			Help: "Gossip members by status (alive, suspect, dead, left).",
		}, []string{"status"}),
		Forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "cluster", Name: "forwarded_requests_total",
			Help: "Requests forwarded to the leader, by result (ok, error, no_leader).",
		}, []string{"result"}),
		ApplyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "cluster", Name: "apply_duration_seconds",
			Help: "Time from proposing a Raft command to its result on the leader.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	reg.MustRegister(c.Members, c.Forwarded, c.ApplyDuration, c.LogSyncDuration)
	for _, s := range []string{"alive", "suspect", "dead", "left"} {
		c.Members.WithLabelValues(s)
	}
	return c
}
