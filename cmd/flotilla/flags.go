package main

import (
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/transport"
)

// Server flag names. They are part of the product (DESIGN.md §3): scripts,
// compose files and docs depend on them, so add freely but rename none.
// Each also reads FLOTILLA_<NAME> (envVars) and the config file key
// <name> in snake_case (configKey).
const (
	flagConfig = "config"

	flagNodeID  = "node-id"
	flagDataDir = "data-dir"

	flagClientAddr  = "client-addr"
	flagHTTPAddr    = "http-addr"
	flagClusterAddr = "cluster-addr"
	flagGossipAddr  = "gossip-addr"

	flagAdvertiseClientAddr  = "advertise-client-addr"
	flagAdvertiseClusterAddr = "advertise-cluster-addr"
	flagAdvertiseGossipAddr  = "advertise-gossip-addr"
	flagAdvertiseHTTPAddr    = "advertise-http-addr"

	flagJoin               = "join"
	flagBootstrapExpect    = "bootstrap-expect"
	flagReapAfter          = "reap-after"
	flagForwardHoldTimeout = "forward-hold-timeout"
	flagRaftLogStore       = "raft-log-store"
	flagSnapshotLogRatio   = "raft-snapshot-log-ratio"
	flagSnapshotSyncBytes  = "raft-snapshot-sync-bytes"
	flagSnapshotWriteRate  = "raft-snapshot-write-rate"

	flagLogLevel  = "log-level"
	flagLogFormat = "log-format"

	flagMaxPayload       = "max-payload"
	flagMaxControlLine   = "max-control-line"
	flagMaxConnections   = "max-connections"
	flagMaxSubscriptions = "max-subscriptions"
	flagMaxPending       = "max-pending"
	flagAuthTimeout      = "auth-timeout"
	flagPingInterval     = "ping-interval"
	flagMaxPingsOut      = "max-pings-out"
	flagWriteDeadline    = "write-deadline"
	flagRateLimitMsgs    = "rate-limit-msgs"
	flagRateLimitBytes   = "rate-limit-bytes"

	flagUser      = "user"
	flagPassword  = "password"
	flagAuthToken = "auth-token"

	flagShutdownGrace = "shutdown-grace"

	// flagUnsafeFaultInjection is the one flag without an env var or a
	// config key (see flagOnly): turning a node into something anyone on
	// the http listener can partition must be a deliberate, visible act.
	flagUnsafeFaultInjection = "unsafe-fault-injection"
)

// flagOnly lists the flags that only the command line can set: they read
// no FLOTILLA_* variable and the config file rejects their keys.
var flagOnly = map[string]bool{flagUnsafeFaultInjection: true}

// Server defaults that no package Config owns.
const (
	defaultDataDir       = "./data"
	defaultHTTPAddr      = "127.0.0.1:8222"
	defaultLogLevel      = "info"
	defaultLogFormat     = "json"
	defaultShutdownGrace = 10 * time.Second
)

// Help categories, so `flotilla server --help` groups related flags.
const (
	catNode     = "Node"
	catListen   = "Listeners"
	catCluster  = "Cluster"
	catLimits   = "Client limits"
	catAuth     = "Client authentication"
	catLogging  = "Logging"
	catLifetime = "Lifecycle"
	catTesting  = "Testing only (never in production)"
)

// envVars returns the single environment variable a flag reads:
// FLOTILLA_ plus the flag name in upper snake case.
func envVars(name string) []string {
	return []string{"FLOTILLA_" + strings.ToUpper(configKey(name))}
}

// configKey is the config-file key of a flag: its name in snake case.
func configKey(name string) string { return strings.ReplaceAll(name, "-", "_") }

// serverFlags returns fresh flag definitions for `flotilla server`. It
// builds new values on every call because urfave/cli flags carry parse
// state and must not be shared between two runs of an App.
func serverFlags() []cli.Flag {
	d := transport.DefaultConfig()
	cd := cluster.DefaultConfig()
	byteSize := func(name, cat, usage string, def int) cli.Flag {
		return &cli.GenericFlag{
			Name: name, Category: cat, EnvVars: envVars(name),
			Usage: usage + " (bytes: 1048576, 1MiB or 64MB)",
			Value: &byteSizeValue{n: int64(def)},
		}
	}
	str := func(name, cat, usage, def string) cli.Flag {
		return &cli.StringFlag{Name: name, Category: cat, EnvVars: envVars(name), Usage: usage, Value: def}
	}
	integer := func(name, cat, usage string, def int) cli.Flag {
		return &cli.IntFlag{Name: name, Category: cat, EnvVars: envVars(name), Usage: usage, Value: def}
	}
	duration := func(name, cat, usage string, def time.Duration) cli.Flag {
		return &cli.DurationFlag{Name: name, Category: cat, EnvVars: envVars(name), Usage: usage, Value: def}
	}
	return []cli.Flag{
		&cli.StringFlag{
			Name: flagConfig, Category: catNode, EnvVars: envVars(flagConfig), TakesFile: true,
			Usage: "YAML config `FILE` whose keys are these flag names in snake_case; flags and env override it",
		},
		str(flagNodeID, catNode, "human-readable node name, unique in the cluster (default: the hostname)", ""),
		str(flagDataDir, catNode, "directory for this node's data (server_id, raft/ log and snapshots, state.db)", defaultDataDir),

		str(flagClientAddr, catListen, "host:port of the NATS client listener", d.Addr),
		str(flagHTTPAddr, catListen, "host:port of the http listener (/metrics, /healthz, /readyz, /debug)", defaultHTTPAddr),
		str(flagClusterAddr, catListen, "host:port of the node-to-node listener (Raft and forwarding)", cd.ClusterAddr),
		str(flagGossipAddr, catListen, "host:port of the memberlist gossip listener (TCP and UDP)", cd.GossipAddr),
		str(flagAdvertiseClientAddr, catListen, "host:port clients should use to reach this node (default: --client-addr)", ""),
		str(flagAdvertiseClusterAddr, catListen, "host:port peers should use for the cluster listener (default: --cluster-addr)", ""),
		str(flagAdvertiseGossipAddr, catListen, "host:port peers should use for gossip (default: --gossip-addr)", ""),
		str(flagAdvertiseHTTPAddr, catListen, "host:port others should use for the http listener (default: --http-addr)", ""),

		&cli.StringSliceFlag{
			Name: flagJoin, Category: catCluster, EnvVars: envVars(flagJoin),
			Usage: "gossip host:port of any existing members to join (comma-separated or repeated); a restarted node rejoins from its data dir without it",
		},
		integer(flagBootstrapExpect, catCluster, "voters to wait for before bootstrapping the first Raft configuration (every node can run the same command line)", cd.BootstrapExpect),
		duration(flagReapAfter, catCluster, "remove members that have been dead this long from the Raft configuration, never below a quorum (0 = never; use flotilla cluster remove)", 0),
		duration(flagForwardHoldTimeout, catCluster, "how long a request that must run on the leader waits for one during an election", cd.ForwardHoldTimeout),
		&cli.Float64Flag{
			Name: flagSnapshotLogRatio, Category: catCluster, EnvVars: envVars(flagSnapshotLogRatio), Value: cd.SnapshotLogRatio,
			Usage: "take a Raft snapshot (a copy of state.db) once the log written since the last one is this many times state.db's size: " +
				"lower = less log on disk and less to replay, more snapshot writing (0 = every 8192 entries, whatever the size)",
		},
		byteSize(flagSnapshotSyncBytes, catCluster, "write a snapshot to disk in steps of this size so the Raft log's fsyncs never queue behind it (0 = one fsync at the end)", int(cd.SnapshotSyncBytes)),
		byteSize(flagSnapshotWriteRate, catCluster, "bytes per second a snapshot is written at most, leaving the disk to the Raft log (0 = no limit; needs --raft-snapshot-sync-bytes)", int(cd.SnapshotWriteRate)),
		str(flagRaftLogStore, catCluster, "Raft log format: segments (one fsync per append) or boltdb (raft-boltdb, two); empty = the data dir's format, segments for a new one (a data dir is never converted)", ""),

		byteSize(flagMaxPayload, catLimits, "largest message (headers + payload) a client may publish", d.MaxPayload),
		byteSize(flagMaxControlLine, catLimits, "longest protocol line a client may send", d.MaxControlLine),
		integer(flagMaxConnections, catLimits, "maximum concurrent client connections (0 = unlimited)", d.MaxConnections),
		integer(flagMaxSubscriptions, catLimits, "maximum subscriptions per connection (0 = unlimited)", d.MaxSubscriptions),
		byteSize(flagMaxPending, catLimits, "outbound bytes buffered per connection before it is cut off as a slow consumer", d.MaxPending),
		duration(flagAuthTimeout, catLimits, "time a new client has to send CONNECT", d.AuthTimeout),
		duration(flagPingInterval, catLimits, "how often the server PINGs a client", d.PingInterval),
		integer(flagMaxPingsOut, catLimits, "unanswered PINGs before a client is closed as stale", d.MaxPingsOut),
		duration(flagWriteDeadline, catLimits, "longest a single write to a client may block before it is a slow consumer", d.WriteDeadline),
		&cli.Float64Flag{
			Name: flagRateLimitMsgs, Category: catLimits, EnvVars: envVars(flagRateLimitMsgs),
			Usage: "messages per second one connection may publish (0 = off); over it the server stops reading that connection",
		},
		byteSize(flagRateLimitBytes, catLimits, "payload bytes per second one connection may publish (0 = off; at least --max-payload)", 0),

		str(flagUser, catAuth, "username clients must send in CONNECT (with --password)", ""),
		str(flagPassword, catAuth, "password clients must send in CONNECT (with --user); prefer the env var, flags show in ps", ""),
		str(flagAuthToken, catAuth, "token clients must send in CONNECT (excludes --user); prefer the env var, flags show in ps", ""),

		str(flagLogLevel, catLogging, "log level: debug, info, warn or error", defaultLogLevel),
		str(flagLogFormat, catLogging, "log format: json or console", defaultLogFormat),

		duration(flagShutdownGrace, catLifetime, "longest a graceful shutdown (SIGTERM/SIGINT) may take before connections are force-closed", defaultShutdownGrace),

		&cli.BoolFlag{
			Name: flagUnsafeFaultInjection, Category: catTesting,
			Usage: "UNSAFE, for the chaos test suite only: lets anyone who can reach the http listener cut this node's " +
				"cluster and gossip links (POST /debug/faults/block, /debug/faults/heal). Command line only (no env var, " +
				"no config key); the node refuses to start unless every listener and advertised address is loopback",
		},
	}
}
