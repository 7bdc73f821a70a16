package cluster

import (
	"fmt"
	"net"
	"time"
)

// Defaults for Config.
const (
	DefaultClusterAddr        = "127.0.0.1:6222"
	DefaultGossipAddr         = "127.0.0.1:7946"
	DefaultForwardHoldTimeout = 5 * time.Second
	DefaultApplyTimeout       = 10 * time.Second
)

// Config configures one cluster node.
type Config struct {
	// NodeID is the node's unique, stable name; it is its Raft server id
	// and memberlist name.
	NodeID string
	// DataDir holds raft/ (the Raft log and stable store, snapshots,
	// peers.json).
	DataDir string
	// RaftLogStore is the Raft log's kind: LogStoreSegments,
	// LogStoreBoltDB, or LogStoreAuto (the data dir's kind, segments for a
	// new one).
	RaftLogStore string
	// ClusterAddr is the listener for Raft RPCs and node-to-node frames.
	ClusterAddr string
	// AdvertiseClusterAddr is how peers reach ClusterAddr; empty means
	// ClusterAddr (which must then not be a wildcard address).
	AdvertiseClusterAddr string
	// GossipAddr is memberlist's TCP+UDP bind address.
	GossipAddr string
	// AdvertiseGossipAddr is how peers reach GossipAddr.
	AdvertiseGossipAddr string
	// ClientAddr and HTTPAddr are advertised to peers in memberlist
	// metadata (connect_urls, cluster status); they are not bound here.
	ClientAddr string
	HTTPAddr   string
	// Join lists gossip addresses of existing members to join at start.
	Join []string
	// BootstrapExpect is the number of members to wait for before the
	// first Raft configuration is bootstrapped (1 = bootstrap alone).
	BootstrapExpect int
	// ReapAfter removes members that have been dead this long from the
	// Raft configuration (0 = never; explicit removal only).
	ReapAfter time.Duration
	// ForwardHoldTimeout bounds how long a request waits for a leader.
	ForwardHoldTimeout time.Duration
	// ApplyTimeout bounds one Raft apply when the caller's context has no
	// earlier deadline.
	ApplyTimeout time.Duration

	// Raft timings; zero values take hashicorp/raft's defaults.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// Snapshots (snapshot_policy.go): every SnapshotInterval the node
	// takes one if SnapshotThreshold entries were applied since the last
	// AND the command bytes applied since reach SnapshotLogRatio times the
	// state's size (0: the entry count alone decides).
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	SnapshotLogRatio  float64
	// SnapshotSyncBytes and SnapshotWriteRate pace the writing of a
	// snapshot (snapshot_write.go): every SnapshotSyncBytes it waits for
	// them to reach the disk, and it writes at most SnapshotWriteRate bytes
	// per second. SnapshotSyncBytes 0 writes unpaced, leaving it all to the
	// final fsync; SnapshotWriteRate 0 is no limit.
	SnapshotSyncBytes int64
	SnapshotWriteRate int64
	// TrailingLogs is how many entries stay in the log after a snapshot,
	// so slightly lagging followers catch up from the log rather than a
	// snapshot install (0 = raft's default, 10240).
	TrailingLogs uint64
	// Gossip timings; zero values take memberlist's LAN defaults.
	GossipProbeInterval   time.Duration
	GossipProbeTimeout    time.Duration
	GossipInterval        time.Duration
	GossipSuspicionMult   int
	GossipDeadNodeReclaim time.Duration
	// GossipToTheDeadTime is how long memberlist keeps gossiping to a
	// dead member (0: memberlist's 30 s); after that only the reconnect
	// loop contacts it again. Tests shorten it.
	GossipToTheDeadTime time.Duration
	// RestoreSnapshotOnStart makes Raft restore its latest snapshot into
	// the state machine at start and replay the log after it. Off by
	// default: the state file survives restarts and replay skips what it
	// holds. The node turns it on after discarding a state file it cannot
	// trust (storage.ErrUntrusted).
	RestoreSnapshotOnStart bool
	// ReconcileInterval is how often the leader re-checks membership
	// against the Raft configuration even without events.
	ReconcileInterval time.Duration

	// Faults, when non-nil, lets tests and the chaos harness cut links:
	// the cluster port's connections and memberlist's transport are then
	// wrapped (see Faults). It is set only by tests and by cmd/flotilla's
	// --unsafe-fault-injection; nil costs nothing.
	Faults *Faults
}

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{
		ClusterAddr:        DefaultClusterAddr,
		GossipAddr:         DefaultGossipAddr,
		BootstrapExpect:    1,
		ForwardHoldTimeout: DefaultForwardHoldTimeout,
		ApplyTimeout:       DefaultApplyTimeout,
		// Half of hashicorp/raft's defaults: a dead leader is replaced in
		// about a second on a LAN, and heartbeats (every 50 ms) still
		// tolerate ten misses before a follower gives up on its leader.
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotInterval:   10 * time.Second,
		SnapshotThreshold:  8192,
		SnapshotLogRatio:   1,
		SnapshotSyncBytes:  DefaultSnapshotSyncBytes,
		SnapshotWriteRate:  DefaultSnapshotWriteRate,
		ReconcileInterval:  5 * time.Second,
	}
}

// ConfigError names the configuration field that failed validation.
type ConfigError struct {
	Field string
	Value any
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("invalid %s %v: %v", e.Field, e.Value, e.Err)
}
func (e *ConfigError) Unwrap() error { return e.Err }

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.NodeID == "" {
		return &ConfigError{Field: "node_id", Value: `""`, Err: errRequired}
	}
	if c.DataDir == "" {
		return &ConfigError{Field: "data_dir", Value: `""`, Err: errRequired}
	}
	for _, a := range []struct{ field, v string }{
		{"cluster_addr", c.ClusterAddr}, {"gossip_addr", c.GossipAddr},
		{"advertise_cluster_addr", c.AdvertiseClusterAddr}, {"advertise_gossip_addr", c.AdvertiseGossipAddr},
	} {
		if a.v == "" && a.field[:9] == "advertise" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			return &ConfigError{Field: a.field, Value: a.v, Err: errHostPort}
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return &ConfigError{Field: "join", Value: j, Err: errHostPort}
		}
	}
	if c.BootstrapExpect < 1 {
		return &ConfigError{Field: "bootstrap_expect", Value: c.BootstrapExpect, Err: fmt.Errorf("must be at least 1")}
	}
	if c.ReapAfter < 0 {
		return &ConfigError{Field: "reap_after", Value: c.ReapAfter, Err: fmt.Errorf("must not be negative")}
	}
	if c.ForwardHoldTimeout <= 0 {
		return &ConfigError{Field: "forward_hold_timeout", Value: c.ForwardHoldTimeout, Err: fmt.Errorf("must be positive")}
	}
	if c.SnapshotInterval <= 0 {
		return &ConfigError{Field: "snapshot_interval", Value: c.SnapshotInterval, Err: fmt.Errorf("must be positive")}
	}
	if c.SnapshotSyncBytes < 0 {
		return &ConfigError{Field: "snapshot_sync_bytes", Value: c.SnapshotSyncBytes, Err: fmt.Errorf("must not be negative")}
	}
	if c.SnapshotWriteRate < 0 {
		return &ConfigError{Field: "snapshot_write_rate", Value: c.SnapshotWriteRate, Err: fmt.Errorf("must not be negative")}
	}
	if c.SnapshotLogRatio < 0 {
		return &ConfigError{Field: "snapshot_log_ratio", Value: c.SnapshotLogRatio, Err: fmt.Errorf("must not be negative")}
	}
	switch c.RaftLogStore {
	case LogStoreAuto, LogStoreSegments, LogStoreBoltDB:
	default:
		return &ConfigError{Field: "raft_log_store", Value: c.RaftLogStore, Err: fmt.Errorf("want %s or %s", LogStoreSegments, LogStoreBoltDB)}
	}
	return nil
}

var (
	errRequired = fmt.Errorf("required")
	errHostPort = fmt.Errorf("not a host:port address")
)
