package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/transport"
)

// serverConfig is everything `flotilla server` runs with, resolved from
// defaults, the config file, the environment and flags.
type serverConfig struct {
	NodeID  string
	DataDir string

	HTTPAddr          string
	AdvertiseHTTPAddr string

	// Cluster is the Raft/gossip node's config; NodeID, DataDir and the
	// advertised client/http addresses are filled in from the fields here.
	Cluster cluster.Config

	LogLevel  string
	LogFormat string

	ShutdownGrace time.Duration

	// UnsafeFaultInjection serves /debug/faults and wraps the cluster
	// links (cluster.Faults). Only the command-line flag sets it.
	UnsafeFaultInjection bool

	// Transport is the client listener's config. ServerID is filled in
	// later from the data dir (see loadServerID).
	Transport transport.Config
}

// origin says where a setting's value came from, so that an invalid value
// is reported against the place the operator has to fix.
type origin int

const (
	originDefault origin = iota
	originFile
	originCLI // a flag or its FLOTILLA_* env var (cli.Context.IsSet covers both)
)

// loadServerConfig resolves the server settings with precedence
// flag > env > file > default and validates them. Every error names the
// offending key; values that came from the config file are reported as
// "config FILE: ...".
func loadServerConfig(c *cli.Context) (serverConfig, error) {
	cfg, r, err := resolveServerConfig(c)
	if err != nil {
		return serverConfig{}, err
	}
	if err := cfg.validate(); err != nil {
		return serverConfig{}, r.annotate(err)
	}
	return cfg, nil
}

// resolveServerConfig applies the precedence and the config file's type
// checks, but none of the value validation.
func resolveServerConfig(c *cli.Context) (serverConfig, *resolver, error) {
	r := &resolver{c: c, origin: map[string]origin{}}
	if path := c.String(flagConfig); path != "" {
		file, err := readConfigFile(path)
		if err != nil {
			return serverConfig{}, nil, err
		}
		r.path, r.file = path, file
	}
	cfg := r.resolve()
	if r.err != nil {
		return serverConfig{}, nil, r.err
	}
	if cfg.NodeID == "" {
		host, err := os.Hostname()
		if err != nil {
			return serverConfig{}, nil, fmt.Errorf("default node id from hostname: %w (set --%s)", err, flagNodeID)
		}
		cfg.NodeID = host
	}
	cfg.Transport.ServerName = cfg.NodeID
	return cfg, r, nil
}

// validate checks the settings cmd owns, then transport's and cluster's.
func (cfg serverConfig) validate() error {
	if !validNodeID(cfg.NodeID) {
		return &fieldError{Field: configKey(flagNodeID), Value: cfg.NodeID, Err: errInvalidNodeID}
	}
	if cfg.DataDir == "" {
		return &fieldError{Field: configKey(flagDataDir), Value: cfg.DataDir, Err: errors.New("must not be empty")}
	}
	addrs := []struct {
		name, value string
		advertise   bool
	}{
		{flagHTTPAddr, cfg.HTTPAddr, false},
		{flagClusterAddr, cfg.Cluster.ClusterAddr, false},
		{flagGossipAddr, cfg.Cluster.GossipAddr, false},
		{flagAdvertiseClientAddr, cfg.Transport.AdvertiseAddr, true},
		{flagAdvertiseHTTPAddr, cfg.AdvertiseHTTPAddr, true},
		{flagAdvertiseClusterAddr, cfg.Cluster.AdvertiseClusterAddr, true},
		{flagAdvertiseGossipAddr, cfg.Cluster.AdvertiseGossipAddr, true},
	}
	for _, a := range addrs {
		if a.advertise && a.value == "" {
			continue // empty means "same as the listen address"
		}
		if err := checkHostPort(a.value, a.advertise); err != nil {
			return &fieldError{Field: configKey(a.name), Value: a.value, Err: err}
		}
	}
	for _, j := range cfg.Cluster.Join {
		if err := checkHostPort(j, true); err != nil {
			return &fieldError{Field: configKey(flagJoin), Value: j, Err: err}
		}
	}
	if cfg.Cluster.BootstrapExpect < 1 {
		return &fieldError{Field: configKey(flagBootstrapExpect), Value: cfg.Cluster.BootstrapExpect, Err: fmt.Errorf("%w: must be at least 1", errOutOfRange)}
	}
	if cfg.Cluster.ReapAfter < 0 {
		return &fieldError{Field: configKey(flagReapAfter), Value: cfg.Cluster.ReapAfter, Err: fmt.Errorf("%w: must not be negative", errOutOfRange)}
	}
	if cfg.Cluster.ForwardHoldTimeout <= 0 {
		return &fieldError{Field: configKey(flagForwardHoldTimeout), Value: cfg.Cluster.ForwardHoldTimeout, Err: fmt.Errorf("%w: must be positive", errOutOfRange)}
	}
	if cfg.Cluster.SnapshotLogRatio < 0 {
		return &fieldError{Field: configKey(flagSnapshotLogRatio), Value: cfg.Cluster.SnapshotLogRatio, Err: fmt.Errorf("%w: must not be negative", errOutOfRange)}
	}
	if cfg.Cluster.SnapshotSyncBytes < 0 {
		return &fieldError{Field: configKey(flagSnapshotSyncBytes), Value: cfg.Cluster.SnapshotSyncBytes, Err: fmt.Errorf("%w: must not be negative", errOutOfRange)}
	}
	if cfg.Cluster.SnapshotWriteRate < 0 {
		return &fieldError{Field: configKey(flagSnapshotWriteRate), Value: cfg.Cluster.SnapshotWriteRate, Err: fmt.Errorf("%w: must not be negative", errOutOfRange)}
	}
	switch cfg.Cluster.RaftLogStore {
	case cluster.LogStoreAuto, cluster.LogStoreSegments, cluster.LogStoreBoltDB:
	default:
		return &fieldError{Field: configKey(flagRaftLogStore), Value: cfg.Cluster.RaftLogStore, Err: fmt.Errorf("%w: want %s or %s", errOutOfRange, cluster.LogStoreSegments, cluster.LogStoreBoltDB)}
	}
	if _, err := parseLogLevel(cfg.LogLevel); err != nil {
		return &fieldError{Field: configKey(flagLogLevel), Value: cfg.LogLevel, Err: err}
	}
	if cfg.LogFormat != "json" && cfg.LogFormat != "console" {
		return &fieldError{Field: configKey(flagLogFormat), Value: cfg.LogFormat, Err: errUnknownLogFormat}
	}
	if cfg.ShutdownGrace <= 0 {
		return &fieldError{Field: configKey(flagShutdownGrace), Value: cfg.ShutdownGrace, Err: fmt.Errorf("%w: must be positive", errOutOfRange)}
	}
	// strconv.ParseFloat accepts "NaN" and "Inf", which would slip past
	// transport's "< 0" check.
	if math.IsNaN(cfg.Transport.RateLimitMsgs) || math.IsInf(cfg.Transport.RateLimitMsgs, 0) {
		return &fieldError{Field: configKey(flagRateLimitMsgs), Value: cfg.Transport.RateLimitMsgs, Err: fmt.Errorf("%w: must be a finite number", errOutOfRange)}
	}
	if err := cfg.Transport.Validate(); err != nil {
		return err
	}
	if cfg.UnsafeFaultInjection {
		return cfg.checkLoopbackOnly()
	}
	return nil
}

// checkLoopbackOnly is the guard of --unsafe-fault-injection: a node whose
// links can be cut over http must not be reachable from another host, so
// every listener, advertised address and join address must be a loopback
// IP (a name such as localhost is refused: it could resolve elsewhere).
func (cfg serverConfig) checkLoopbackOnly() error {
	type addr struct {
		name, value string
		optional    bool // unset means "the listen address"
	}
	addrs := []addr{
		{flagClientAddr, cfg.Transport.Addr, false},
		{flagHTTPAddr, cfg.HTTPAddr, false},
		{flagClusterAddr, cfg.Cluster.ClusterAddr, false},
		{flagGossipAddr, cfg.Cluster.GossipAddr, false},
		{flagAdvertiseClientAddr, cfg.Transport.AdvertiseAddr, true},
		{flagAdvertiseHTTPAddr, cfg.AdvertiseHTTPAddr, true},
		{flagAdvertiseClusterAddr, cfg.Cluster.AdvertiseClusterAddr, true},
		{flagAdvertiseGossipAddr, cfg.Cluster.AdvertiseGossipAddr, true},
	}
	for _, j := range cfg.Cluster.Join {
		addrs = append(addrs, addr{flagJoin, j, false})
	}
	for _, a := range addrs {
		if a.optional && a.value == "" {
			continue
		}
		host, _, err := net.SplitHostPort(a.value)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return &fieldError{Field: configKey(a.name), Value: a.value, Err: errNotLoopback}
		}
	}
	return nil
}

// checkHostPort accepts host:port with a numeric port; advertised
// addresses (which others dial) also need a non-zero port. The host may be
// empty (all interfaces), as for net.Listen.
func checkHostPort(s string, advertise bool) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errNotHostPort
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return errNotHostPort
	}
	if advertise && p == 0 {
		return fmt.Errorf("%w: port 0 cannot be dialled", errNotHostPort)
	}
	return nil
}

func validNodeID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// resolver reads each setting from the flag or env var when set, else from
// the config file, else the flag's default. The first file type error is
// kept in err so that resolve stays a flat list of assignments.
type resolver struct {
	c      *cli.Context
	path   string                // config file path as given, "" without one
	file   map[string]*yaml.Node // config key -> value node
	origin map[string]origin     // config key -> where its value came from
	err    error
}

// resolve maps every server flag onto serverConfig.
func (r *resolver) resolve() serverConfig {
	t := transport.DefaultConfig()
	t.Addr = r.str(flagClientAddr)
	t.AdvertiseAddr = r.str(flagAdvertiseClientAddr)
	t.MaxPayload = r.byteSize(flagMaxPayload)
	t.MaxControlLine = r.byteSize(flagMaxControlLine)
	t.MaxConnections = r.int(flagMaxConnections)
	t.MaxSubscriptions = r.int(flagMaxSubscriptions)
	t.MaxPending = r.byteSize(flagMaxPending)
	t.AuthTimeout = r.duration(flagAuthTimeout)
	t.PingInterval = r.duration(flagPingInterval)
	t.MaxPingsOut = r.int(flagMaxPingsOut)
	t.WriteDeadline = r.duration(flagWriteDeadline)
	t.RateLimitMsgs = r.float(flagRateLimitMsgs)
	t.RateLimitBytes = float64(r.byteSize(flagRateLimitBytes))
	t.Username = r.str(flagUser)
	t.Password = r.str(flagPassword)
	t.Token = r.str(flagAuthToken)
	t.JetStream = true // every node serves the JetStream API subset
	cl := cluster.DefaultConfig()
	cl.ClusterAddr = r.str(flagClusterAddr)
	cl.AdvertiseClusterAddr = r.str(flagAdvertiseClusterAddr)
	cl.GossipAddr = r.str(flagGossipAddr)
	cl.AdvertiseGossipAddr = r.str(flagAdvertiseGossipAddr)
	cl.Join = r.list(flagJoin)
	cl.BootstrapExpect = r.int(flagBootstrapExpect)
	cl.ReapAfter = r.duration(flagReapAfter)
	cl.ForwardHoldTimeout = r.duration(flagForwardHoldTimeout)
	cl.RaftLogStore = r.str(flagRaftLogStore)
	cl.SnapshotLogRatio = r.float(flagSnapshotLogRatio)
	cl.SnapshotSyncBytes = int64(r.byteSize(flagSnapshotSyncBytes))
	cl.SnapshotWriteRate = int64(r.byteSize(flagSnapshotWriteRate))
	return serverConfig{
		NodeID:            r.str(flagNodeID),
		DataDir:           r.str(flagDataDir),
		HTTPAddr:          r.str(flagHTTPAddr),
		AdvertiseHTTPAddr: r.str(flagAdvertiseHTTPAddr),
		Cluster:           cl,
		LogLevel:          r.str(flagLogLevel),
		LogFormat:         r.str(flagLogFormat),
		ShutdownGrace:     r.duration(flagShutdownGrace),
		Transport:         t,
		// Straight from the command line: never the file (see flagOnly).
		UnsafeFaultInjection: r.c.Bool(flagUnsafeFaultInjection),
	}
}

// fileNode returns the config file's value for flag name, or nil when the
// flag or env var is set (they win) or the file does not have the key.
func (r *resolver) fileNode(name string) *yaml.Node {
	key := configKey(name)
	if r.c.IsSet(name) {
		r.origin[key] = originCLI
		return nil
	}
	n := r.file[key]
	if n != nil {
		r.origin[key] = originFile
	}
	return n
}

// typeErr records the first wrong-typed value in the config file.
func (r *resolver) typeErr(name string, n *yaml.Node, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("config %s: key %q (line %d): want %s, got %s", r.path, configKey(name), n.Line, want, describeNode(n))
	}
}

func (r *resolver) str(name string) string {
	n := r.fileNode(name)
	if n == nil {
		return r.c.String(name)
	}
	// Any scalar is taken as its literal text, so `password: 1234` works.
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		r.typeErr(name, n, "a string")
		return ""
	}
	return n.Value
}

func (r *resolver) int(name string) int {
	n := r.fileNode(name)
	if n == nil {
		return r.c.Int(name)
	}
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		r.typeErr(name, n, "an integer")
		return 0
	}
	return v
}

func (r *resolver) float(name string) float64 {
	n := r.fileNode(name)
	if n == nil {
		return r.c.Float64(name)
	}
	var v float64
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&v) != nil {
		r.typeErr(name, n, "a number")
		return 0
	}
	return v
}

func (r *resolver) duration(name string) time.Duration {
	n := r.fileNode(name)
	if n == nil {
		return r.c.Duration(name)
	}
	// "0" parses too, which is the one unit-less duration that is clear.
	if n.Kind == yaml.ScalarNode {
		if d, err := time.ParseDuration(n.Value); err == nil {
			return d
		}
	}
	r.typeErr(name, n, `a duration such as "2s" or "1m30s"`)
	return 0
}

func (r *resolver) byteSize(name string) int {
	n := r.fileNode(name)
	if n == nil {
		v, _ := r.c.Generic(name).(*byteSizeValue)
		if v == nil {
			return 0
		}
		return clampInt(v.n)
	}
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int":
			var v int64
			if n.Decode(&v) == nil && v >= 0 {
				return clampInt(v)
			}
		case "!!str":
			if v, err := parseByteSize(n.Value); err == nil {
				return clampInt(v)
			}
		}
	}
	r.typeErr(name, n, `a byte count such as 1048576, "1MiB" or "64MB"`)
	return 0
}

// list accepts a YAML sequence of strings or one comma-separated string,
// like the flag and env var do.
func (r *resolver) list(name string) []string {
	n := r.fileNode(name)
	if n == nil {
		return cleanList(r.c.StringSlice(name))
	}
	switch {
	case n.Kind == yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode || item.ShortTag() == "!!null" {
				r.typeErr(name, item, "a list of strings")
				return nil
			}
			out = append(out, item.Value)
		}
		return cleanList(out)
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		return cleanList(strings.Split(n.Value, ","))
	}
	r.typeErr(name, n, "a list of strings or a comma-separated string")
	return nil
}

// annotate adds where an invalid value came from to a validation error:
// the config file, or the flag and its env var.
func (r *resolver) annotate(err error) error {
	var field string
	var fe *fieldError
	var ce *transport.ConfigError
	switch {
	case errors.As(err, &fe):
		field = fe.Field
	case errors.As(err, &ce):
		field = ce.Field
	default:
		return err
	}
	switch r.origin[field] {
	case originFile:
		return fmt.Errorf("config %s: %w", r.path, err)
	case originCLI:
		flag := strings.ReplaceAll(field, "_", "-")
		return fmt.Errorf("%w (from --%s or %s)", err, flag, envVars(flag)[0])
	}
	return err
}

// readConfigFile parses a YAML mapping of config keys and rejects unknown
// and duplicate keys, naming them.
func readConfigFile(path string) (map[string]*yaml.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in our prefix
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	out := map[string]*yaml.Node{}
	if len(doc.Content) == 0 {
		return out, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config %s: want a mapping of key: value at the top level (line %d)", path, root.Line)
	}
	known := knownConfigKeys()
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("config %s: keys must be strings (line %d)", path, k.Line)
		}
		if flagOnly[strings.ReplaceAll(k.Value, "_", "-")] {
			return nil, fmt.Errorf("config %s: key %q (line %d) can only be given on the command line, as --%s",
				path, k.Value, k.Line, strings.ReplaceAll(k.Value, "_", "-"))
		}
		if !known[k.Value] {
			return nil, fmt.Errorf("config %s: unknown key %q (line %d)%s", path, k.Value, k.Line, suggestKey(k.Value, known))
		}
		if _, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("config %s: duplicate key %q (line %d)", path, k.Value, k.Line)
		}
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		out[k.Value] = v
	}
	return out, nil
}

// knownConfigKeys is every server flag in snake_case, except config itself
// and the flag-only ones.
func knownConfigKeys() map[string]bool {
	known := map[string]bool{}
	for _, f := range serverFlags() {
		if name := f.Names()[0]; name != flagConfig && !flagOnly[name] {
			known[configKey(name)] = true
		}
	}
	return known
}

// suggestKey returns `; did you mean "x"?` for the closest known key
// within two edits, or "".
func suggestKey(key string, known map[string]bool) string {
	best, bestDist := "", 3
	for k := range known {
		if d := editDistance(key, k); d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance of two short ASCII strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	switch n.ShortTag() {
	case "!!null":
		return "nothing (null)"
	case "!!str":
		return strconv.Quote(n.Value)
	}
	return n.Value
}

func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// clampInt converts a parsed byte count to int; values beyond int (only
// possible on 32-bit platforms) become MaxInt and fail range validation.
func clampInt(v int64) int {
	if v > math.MaxInt {
		return math.MaxInt
	}
	return int(v)
}
