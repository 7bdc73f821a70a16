package consumers

import (
	"os"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/internal/testcluster"
	"github.com/flotilla/flotilla/internal/testutil"
)

// oracleEnv selects the server under test: unset (or "flotilla") for a
// Flotilla cluster, "nats-server" for the in-process oracle the tests were
// validated against.
const oracleEnv = "FLOTILLA_CONSUMER_ORACLE"

// target is the server a test talks to. Consumers connect to consumerURL
// and producers to producerURL; on Flotilla these are different nodes
// (consumers on followers, producers on the leader), so deliveries, acks and
// pull requests all have to cross nodes. On the oracle everything is one
// node.
type target struct {
	name string
	// urls holds every node's client URL.
	urls []string
	// cluster is the Flotilla cluster, nil on the oracle.
	cluster *testcluster.Cluster
}

// newTarget starts the server selected by FLOTILLA_CONSUMER_ORACLE. It is
// torn down through t.Cleanup.
func newTarget(t *testing.T) *target {
	t.Helper()
	switch v := os.Getenv(oracleEnv); v {
	case "", "flotilla":
		return newFlotillaTarget(t)
	case "nats-server":
		return newOracleTarget(t)
	default:
		t.Fatalf("%s=%q: want unset, flotilla or nats-server", oracleEnv, v)
		return nil
	}
}

// newFlotillaTarget starts a three-node cluster with client listeners.
func newFlotillaTarget(t *testing.T) *target {
	t.Helper()
	c := testcluster.New(t, 3, testcluster.WithClients())
	c.WaitLeader()
	tg := &target{name: "flotilla", cluster: c}
	for _, n := range c.Nodes() {
		tg.urls = append(tg.urls, n.ClientURL)
	}
	return tg
}

// newOracleTarget starts a single nats-server with JetStream on a random
// port.
func newOracleTarget(t *testing.T) *target {
	t.Helper()
	opts := &natsserver.Options{
		ServerName: "oracle",
		Host:       "127.0.0.1",
		Port:       -1,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   t.TempDir(),
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatalf("new nats-server: %v", err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(testutil.Scale(10 * time.Second)) {
		t.Fatal("nats-server not ready")
	}
	return &target{name: "nats-server", urls: []string{s.ClientURL()}}
}

// requireFlotilla skips tests that need to kill nodes (the oracle is a
// single node) and returns the cluster.
func (tg *target) requireFlotilla(t *testing.T) *testcluster.Cluster {
	t.Helper()
	if tg.cluster == nil {
		t.Skipf("needs a Flotilla cluster (target is %s)", tg.name)
	}
	return tg.cluster
}

// consumerURL returns the URL consuming clients use: a follower's.
func (tg *target) consumerURL(t *testing.T) string {
	t.Helper()
	if tg.cluster == nil {
		return tg.urls[0]
	}
	tg.cluster.WaitLeader()
	fs := tg.cluster.Followers()
	if len(fs) == 0 {
		t.Fatal("no followers")
	}
	return fs[0].ClientURL
}

// producerURL returns the leader's URL (any node would do).
func (tg *target) producerURL(t *testing.T) string {
	t.Helper()
	if tg.cluster == nil {
		return tg.urls[0]
	}
	return tg.cluster.WaitLeader().ClientURL
}

// consumerJS connects a consuming client to a follower.
func (tg *target) consumerJS(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return connect(t, tg.consumerURL(t))
}

// producerJS connects a publishing client to the leader.
func (tg *target) producerJS(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return connect(t, tg.producerURL(t))
}

// connect connects a nats.go client to url and returns its JetStream
// handle. The client reconnects forever, to url or any node it learnt of
// through connect_urls, so it survives the loss of its node.
func connect(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{
		nats.Name(t.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
	}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}
