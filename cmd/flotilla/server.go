package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/metrics"
	"github.com/flotilla/flotilla/storage"
	"github.com/flotilla/flotilla/transport"
)

func serverCommand() *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "run a Flotilla node",
		Description: `Runs one node: the NATS client listener (--client-addr) and the http
listener (--http-addr: /metrics, /healthz, /readyz, /debug/vars, /debug/pprof/).

Every flag also reads FLOTILLA_<NAME> (e.g. FLOTILLA_CLIENT_ADDR) and the key
<name> in snake_case from the --config YAML file (e.g. client_addr); the
precedence is flag > env > file > default (the one exception,
--unsafe-fault-injection, is command line only). Byte sizes take a plain integer
or a suffix: KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).

SIGTERM or SIGINT shuts down gracefully within --shutdown-grace: /readyz fails
first, clients get a lame-duck INFO, buffered output is flushed, then the
listeners close. A second signal exits at once with status 1.`,
		Flags: serverFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unexpected argument %q: server takes only flags (see flotilla server --help)", c.Args().First())
			}
			cfg, err := loadServerConfig(c)
			if err != nil {
				return err
			}
			return runServer(c.Context, cfg, c.App.ErrWriter)
		},
	}
}

// runServer runs a node until ctx is done or SIGTERM/SIGINT arrives, then
// shuts it down gracefully. Logs go to logOut. Startup errors are returned
// (run prints them and exits 1); a completed or timed-out graceful shutdown
// returns nil; a second signal returns exit status 1 at once.
func runServer(ctx context.Context, cfg serverConfig, logOut io.Writer) error {
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, logOut)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }() // stderr may not support fsync
	// The node id goes on every line, once, here; cmd's own lines are
	// named "server", the packages name theirs.
	log = log.With(zap.String("node_id", cfg.NodeID))

	// Catch signals before anything starts so that one arriving during
	// startup still leads to an orderly shutdown rather than a kill.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	n, err := newNode(cfg, log)
	if err != nil {
		return err
	}
	log = n.log
	if err := n.start(); err != nil {
		return err
	}

	var exitErr error
	select {
	case <-ctx.Done():
		log.Info("shutdown started", zap.String("reason", "context done"), zap.Duration("shutdown_grace", cfg.ShutdownGrace))
	case sig := <-sigs:
		log.Info("shutdown started", zap.String("signal", sig.String()), zap.Duration("shutdown_grace", cfg.ShutdownGrace))
	case err := <-n.http.done:
		log.Error("http listener failed", zap.Error(err))
		exitErr = fmt.Errorf("http listener: %w", err)
	}

	began := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.shutdown(cfg.ShutdownGrace)
	}()
	// The shutdown steps are bounded by the grace period themselves; this
	// timer only guarantees the process exits even if one of them ignores
	// its context.
	hard := time.NewTimer(cfg.ShutdownGrace)
	defer hard.Stop()
	select {
	case <-done:
		log.Info("server stopped", zap.Duration("took", time.Since(began)))
	case sig := <-sigs:
		log.Warn("second signal received, exiting without finishing shutdown", zap.String("signal", sig.String()))
		return cli.Exit("", 1)
	case <-hard.C:
		log.Warn("shutdown did not finish within the grace period, exiting", zap.Duration("shutdown_grace", cfg.ShutdownGrace))
	}
	return exitErr
}

// node is one running Flotilla server: everything runServer wires
// together, in construction order.
type node struct {
	cfg      serverConfig
	log      *zap.Logger // cmd's own lines ("server")
	rootLog  *zap.Logger // handed to packages, which name their own
	serverID string
	started  time.Time

	registry  *prometheus.Registry
	metrics   *metrics.Metrics
	store     *storage.Store
	fsm       *broker.FSM
	broker    *broker.Broker
	transport *transport.Server
	cluster   *cluster.Node     // set by start
	jetstream *broker.JetStream // set by start
	ready     *readiness
	http      *httpListener // set by start
}

// newNode builds the node in dependency order (style.md §2.1): server id
// from the data dir, metrics registry, storage, broker FSM, broker,
// transport. Nothing listens yet; the cluster node is created in start,
// once the client listener's address is known (it is advertised in gossip).
func newNode(cfg serverConfig, log *zap.Logger) (*node, error) {
	id, created, err := loadServerID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if created {
		log.Named("server").Info("server id created", zap.String("server_id", id), zap.String("data_dir", absPath(cfg.DataDir)))
	}
	cfg.Transport.ServerID = id
	if cfg.UnsafeFaultInjection {
		// Logged at error level so that no --log-level hides it.
		log.Named("server").Error("unsafe fault injection enabled",
			zap.String("warning", "anyone who can reach the http listener can cut this node's cluster and gossip links: never use this flag in production"),
			zap.String("http_addr", cfg.HTTPAddr))
		cfg.Cluster.Faults = cluster.NewFaults()
	}

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	store, err := openStateStore(filepath.Join(cfg.DataDir, "state.db"), &cfg.Cluster, log.Named("server"))
	if err != nil {
		return nil, fmt.Errorf("open state store: %w", err)
	}
	b := broker.New(log)
	srv, err := transport.New(cfg.Transport, b, m.Transport, log)
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("create client listener: %w", err)
	}
	return &node{
		cfg:       cfg,
		log:       log.Named("server"),
		rootLog:   log,
		serverID:  id,
		started:   time.Now(),
		registry:  reg,
		metrics:   m,
		store:     store,
		fsm:       broker.NewFSM(store, log),
		broker:    b,
		transport: srv,
		ready:     newReadiness("starting"),
	}, nil
}

// start binds and serves the http listener first (so liveness and metrics
// answer while the node starts, with /readyz at 503), then the client
// listener, then the cluster node, then declares the node ready (readiness
// then also follows the cluster: a known leader, caught up).
func (n *node) start() error {
	h, err := listenHTTP(n.cfg.HTTPAddr, newHTTPHandler(httpDeps{
		registry: n.registry,
		ready:    n.ready,
		varz:     func() any { return n.transport.Varz() },
		cluster:  lazyCluster{n},
		faults:   n.cfg.Cluster.Faults,
		nodeID:   n.cfg.NodeID,
		serverID: n.serverID,
		started:  n.started,
		log:      n.log.Named("http"),
	}), n.log.Named("http"))
	if err != nil {
		_ = n.store.Close()
		return err
	}
	n.http = h
	h.serve()

	if err := n.transport.Start(); err != nil {
		_ = h.shutdown(context.Background()) // nothing is in flight yet
		_ = n.store.Close()
		return fmt.Errorf("start client listener: %w", err)
	}
	if err := n.startCluster(h.Addr().String()); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = n.transport.Shutdown(ctx)
		_ = h.shutdown(ctx)
		_ = n.store.Close()
		return err
	}
	n.ready.cluster = n.cluster.Ready
	n.ready.ready()

	clientAddr := n.transport.Addr().String()
	httpAddr := h.Addr().String()
	connect := clientAddr
	if n.cfg.Transport.AdvertiseAddr != "" {
		connect = n.cfg.Transport.AdvertiseAddr
	}
	n.log.Info("listening for nats clients",
		zap.String("url", "nats://"+connect),
		zap.String("http_url", "http://"+httpAddr))
	n.log.Info("server started",
		zap.String("client_addr", clientAddr),
		zap.String("http_addr", httpAddr),
		zap.String("data_dir", absPath(n.cfg.DataDir)),
		zap.String("server_id", n.serverID),
		zap.String("version", version),
		zap.Bool("unsafe_fault_injection", n.cfg.UnsafeFaultInjection))
	return nil
}

// shutdown stops the node in reverse order within grace: fail readiness,
// drain and close the client listener (lame-duck INFO, stop accepting,
// flush, close), then the http listener. The client listener gets the
// grace period minus a small reserve, so that force-closing it and
// stopping http still fit in the grace period.
func (n *node) shutdown(grace time.Duration) {
	n.ready.fail("shutting down")
	defer func() {
		if err := n.store.Close(); err != nil {
			n.log.Warn("close state store", zap.Error(err))
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	drainCtx, cancelDrain := context.WithTimeout(ctx, grace-shutdownReserve(grace))
	defer cancelDrain()

	if err := n.transport.Shutdown(drainCtx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			n.log.Warn("shutdown grace period expired, client connections force-closed", zap.Duration("shutdown_grace", grace))
		} else {
			n.log.Error("client listener shutdown", zap.Error(err))
		}
	}
	// Stop taking stream publishes and API requests (clients are gone),
	// then leave gossip (peers record "left", not "dead"), hand leadership
	// over, stop Raft. The node stays in the Raft configuration.
	n.jetstream.Shutdown()
	if err := n.cluster.Shutdown(ctx); err != nil {
		n.log.Warn("cluster shutdown", zap.Error(err))
	}
	if err := n.http.shutdown(ctx); err != nil {
		n.log.Warn("http listener shutdown", zap.Error(err))
	}
}

// startCluster starts the Raft/gossip node. The client and http addresses
// it advertises are the configured advertise addresses or the bound ones.
func (n *node) startCluster(httpAddr string) error {
	cfg := n.cfg.Cluster
	cfg.NodeID = n.cfg.NodeID
	cfg.DataDir = n.cfg.DataDir
	cfg.ClientAddr = firstNonEmpty(n.cfg.Transport.AdvertiseAddr, n.transport.Addr().String())
	cfg.HTTPAddr = firstNonEmpty(n.cfg.AdvertiseHTTPAddr, httpAddr)
	c, err := cluster.New(cfg, n.fsm, n.metrics.Cluster, n.rootLog)
	if err != nil {
		return err
	}
	// Core messages and interest travel between nodes over the cluster
	// links; attach before Start so no peer link comes up unannounced.
	c.SetFrameHandler(n.broker)
	n.broker.AttachMesh(c)
	// Membership drives connect_urls: clients learn every live node and
	// fail over by themselves.
	c.OnMembershipChange(func() { n.transport.SetConnectURLs(clientURLs(c.Members())) })
	if err := c.Start(); err != nil {
		return fmt.Errorf("start cluster node: %w", err)
	}
	n.cluster = c
	n.transport.SetConnectURLs(clientURLs(c.Members()))
	// Streams: the $JS.API responder and the capture of stream-bound
	// publishes, executed on the leader through the cluster node.
	n.jetstream = broker.NewJetStream(n.broker, n.fsm, c, n.rootLog)
	if err := n.jetstream.Start(); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.Shutdown(ctx)
		return fmt.Errorf("start jetstream: %w", err)
	}
	return nil
}

// clientURLs lists the client addresses of the live members.
func clientURLs(members []cluster.Member) []string {
	var urls []string
	for _, m := range members {
		if m.Status == cluster.StatusAlive && m.Client != "" {
			urls = append(urls, m.Client)
		}
	}
	return urls
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// lazyCluster lets the http listener, which starts before the cluster
// node, serve the cluster endpoints once the node exists.
type lazyCluster struct{ n *node }

func (l lazyCluster) node() (*cluster.Node, error) {
	if l.n.cluster == nil {
		return nil, errClusterStarting
	}
	return l.n.cluster, nil
}

func (l lazyCluster) Status() cluster.Status {
	c, err := l.node()
	if err != nil {
		return cluster.Status{NodeID: l.n.cfg.NodeID, State: "Starting"}
	}
	return c.Status()
}

func (l lazyCluster) RemoveNode(ctx context.Context, id string) error {
	c, err := l.node()
	if err != nil {
		return err
	}
	return c.RemoveNode(ctx, id)
}

func (l lazyCluster) TransferLeadership(ctx context.Context, id string) error {
	c, err := l.node()
	if err != nil {
		return err
	}
	return c.TransferLeadership(ctx, id)
}

// shutdownReserve is the part of the grace period kept back from draining
// clients for the steps after it.
func shutdownReserve(grace time.Duration) time.Duration {
	return min(grace/10, 500*time.Millisecond)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// openStateStore opens the state file with lazy sync (storage/lazysync.go:
// the Raft log is the durable record). A file that was open when the
// machine crashed is not trusted: it is moved aside and rebuilt from the
// Raft snapshot and log.
func openStateStore(path string, cl *cluster.Config, log *zap.Logger) (*storage.Store, error) {
	opts := storage.Options{LazySync: true}
	store, err := storage.OpenWith(path, opts)
	if !errors.Is(err, storage.ErrUntrusted) {
		return store, err
	}
	aside, derr := storage.Discard(path)
	if derr != nil {
		return nil, errors.Join(err, derr)
	}
	log.Warn("state file was open when the machine crashed: rebuilding it from the Raft snapshot and log",
		zap.String("discarded", aside))
	cl.RestoreSnapshotOnStart = true
	return storage.OpenWith(path, opts)
}
