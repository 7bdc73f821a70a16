package transport

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/internal/testutil"
	"github.com/flotilla/flotilla/metrics"
)

// testServer is a running Server on a random port with its own registry.
type testServer struct {
	*Server
	reg *prometheus.Registry
	url string
}

// newTestServer starts a server on 127.0.0.1:0; opts adjust the config.
// It is shut down through t.Cleanup.
func newTestServer(t *testing.T, opts ...func(*Config)) *testServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.ServerID = "TESTSERVERID"
	cfg.ServerName = "test"
	for _, o := range opts {
		o(&cfg)
	}
	log := zaptest.NewLogger(t)
	reg := prometheus.NewRegistry()
	s, err := New(cfg, broker.New(log), metrics.New(reg).Transport, log)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(5*time.Second))
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return &testServer{Server: s, reg: reg, url: "nats://" + s.Addr().String()}
}

// mustConnect connects a nats.go client that fails the test on async errors.
func mustConnect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.Name(t.Name()), nats.Timeout(testutil.Scale(5 * time.Second))}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func mustSubSync(t *testing.T, nc *nats.Conn, subject string) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("subscribe %s: %v", subject, err)
	}
	return sub
}

func mustFlush(t *testing.T, nc *nats.Conn) {
	t.Helper()
	if err := nc.FlushTimeout(testutil.Scale(5 * time.Second)); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func mustNext(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(testutil.Scale(5 * time.Second))
	if err != nil {
		t.Fatalf("next message on %s: %v", sub.Subject, err)
	}
	return m
}

// expectNone asserts no message is pending after a server round trip, which
// orders it after anything published before.
func expectNone(t *testing.T, nc *nats.Conn, sub *nats.Subscription) {
	t.Helper()
	mustFlush(t, nc)
	if m, err := sub.NextMsg(20 * time.Millisecond); err == nil {
		t.Fatalf("unexpected message on %s: %s %q", sub.Subject, m.Subject, m.Data)
	}
}

// rawConn is a bare TCP client for protocol-level tests.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t *testing.T, s *testServer) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	rc := &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
	if line := rc.line(); !strings.HasPrefix(line, "INFO {") {
		t.Fatalf("first line %q, want INFO", line)
	}
	return rc
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := rc.nc.Write([]byte(s)); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// line reads one CRLF-terminated line (without the CRLF).
func (rc *rawConn) line() string {
	rc.t.Helper()
	_ = rc.nc.SetReadDeadline(time.Now().Add(testutil.Scale(5 * time.Second)))
	l, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("read line: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// expect reads lines, failing unless they equal want in order.
func (rc *rawConn) expect(want ...string) {
	rc.t.Helper()
	for _, w := range want {
		if got := rc.line(); got != w {
			rc.t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// expectClosed asserts the server closes the connection (EOF) soon.
func (rc *rawConn) expectClosed() {
	rc.t.Helper()
	_ = rc.nc.SetReadDeadline(time.Now().Add(testutil.Scale(5 * time.Second)))
	for {
		l, err := rc.r.ReadString('\n')
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				rc.t.Fatalf("connection still open")
			}
			return
		}
		rc.t.Logf("before close: %q", l)
	}
}

// counter reads a counter or gauge value from the server's registry.
func (s *testServer) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

func eventuallyCounter(t *testing.T, s *testServer, want float64, name string, labels ...string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := s.counter(t, name, labels...); got != want {
			return fmt.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
		return nil
	})
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), testutil.Scale(d))
}
