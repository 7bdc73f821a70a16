package differential

import (
	"context"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/internal/testutil"
	"github.com/flotilla/flotilla/metrics"
	"github.com/flotilla/flotilla/transport"
)

// serverConfig is the part of a server's configuration a script may set.
// It is applied identically to both servers; a zero field keeps both
// servers' defaults, which already agree (1 MiB payload, 4 KiB control
// line, no subscription limit, 2 s auth timeout, 2 min ping interval, 2
// pings out).
type serverConfig struct {
	MaxPayload     int           // transport.Config.MaxPayload / Options.MaxPayload
	MaxControlLine int           // MaxControlLine / MaxControlLine
	MaxSubs        int           // MaxSubscriptions / MaxSubs
	User, Pass     string        // Username, Password / Username, Password
	Token          string        // Token / Authorization
	AuthTimeout    time.Duration // AuthTimeout / AuthTimeout (seconds as float64)
	PingInterval   time.Duration // PingInterval / PingInterval
	MaxPingsOut    int           // MaxPingsOut / MaxPingsOut
}

// startFlotilla starts Flotilla's client listener on a random port and
// returns its address. It is shut down through t.Cleanup.
func startFlotilla(t *testing.T, sc serverConfig) string {
	t.Helper()
	cfg := transport.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.ServerID = "FLOTILLADIFF"
	cfg.ServerName = "flotilla"
	if sc.MaxPayload > 0 {
		cfg.MaxPayload = sc.MaxPayload
	}
	if sc.MaxControlLine > 0 {
		cfg.MaxControlLine = sc.MaxControlLine
	}
	cfg.MaxSubscriptions = sc.MaxSubs
	cfg.Username, cfg.Password, cfg.Token = sc.User, sc.Pass, sc.Token
	if sc.AuthTimeout > 0 {
		cfg.AuthTimeout = sc.AuthTimeout
	}
	if sc.PingInterval > 0 {
		cfg.PingInterval = sc.PingInterval
	}
	if sc.MaxPingsOut > 0 {
		cfg.MaxPingsOut = sc.MaxPingsOut
	}
	log := zaptest.NewLogger(t)
	s, err := transport.New(cfg, broker.New(log), metrics.New(prometheus.NewRegistry()).Transport, log)
	if err != nil {
		t.Fatalf("new flotilla: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("start flotilla: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(5*time.Second))
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s.Addr().String()
}

// startNATS starts the oracle, an in-process nats-server, on a random port
// and returns its address. It is shut down through t.Cleanup.
func startNATS(t *testing.T, sc serverConfig) string {
	t.Helper()
	opts := &natsserver.Options{
		ServerName: "oracle",
		Host:       "127.0.0.1",
		Port:       -1,
		NoLog:      true,
		NoSigs:     true,
		// Flotilla sends its first PING a full PingInterval after connect;
		// nats-server would send one after ~2 s. The scripts never run that
		// long, but without this a slow -race run could see a stray PING.
		DisableShortFirstPing: true,
		MaxSubs:               sc.MaxSubs,
		Username:              sc.User,
		Password:              sc.Pass,
		Authorization:         sc.Token,
		PingInterval:          transport.DefaultPingInterval,
		MaxPingsOut:           transport.DefaultMaxPingsOut,
		AuthTimeout:           transport.DefaultAuthTimeout.Seconds(),
		MaxPayload:            transport.DefaultMaxPayload,
		MaxControlLine:        transport.DefaultMaxControlLine,
	}
	if sc.MaxPayload > 0 {
		opts.MaxPayload = int32(sc.MaxPayload)
	}
	if sc.MaxControlLine > 0 {
		opts.MaxControlLine = int32(sc.MaxControlLine)
	}
	if sc.AuthTimeout > 0 {
		opts.AuthTimeout = sc.AuthTimeout.Seconds()
	}
	if sc.PingInterval > 0 {
		opts.PingInterval = sc.PingInterval
	}
	if sc.MaxPingsOut > 0 {
		opts.MaxPingsOut = sc.MaxPingsOut
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatalf("new nats-server: %v", err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(testutil.Scale(5 * time.Second)) {
		t.Fatalf("nats-server not ready")
	}
	return s.Addr().String()
}
