package transport

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/flotilla/flotilla/internal/testutil"
)

// Bad input must never crash or wedge the server: each case gets the NATS
// reaction (an -ERR text and/or a close), is counted, and the server keeps
// serving other clients.
func TestServer_BadInput_ClosesOnlyThatClient(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		send   string
		expect []string // lines before the close, or before PONG when open
		closed bool
		reason string // errors_total label incremented
	}{
		{"garbage", "\x00\x01\x02garbage\r\n", []string{"-ERR 'Unknown Protocol Operation'"}, true, "parse"},
		{"unknown op", "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nFOO bar\r\n", []string{"-ERR 'Unknown Protocol Operation'"}, true, "parse"},
		{"oversized control line", "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB " + strings.Repeat("a", 5000) + " 1\r\n", []string{"-ERR 'maximum control line exceeded'"}, true, "limit"},
		{"malformed publish", "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPUB foo bar\r\n", nil, true, "parse"},
		{"payload without CRLF", "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPUB foo 1\r\nxyz\r\n", []string{"-ERR 'Unknown Protocol Operation'"}, true, "parse"},
		{"oversized payload", "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPUB foo 2000000\r\n", []string{"-ERR 'Maximum Payload Violation'"}, true, "limit"},
		{"invalid subscribe subject", "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB foo..bar 1\r\nPING\r\n", []string{"-ERR 'Invalid Subject'", "PONG"}, false, "parse"},
		{"wildcard publish subject (pedantic)", "CONNECT {\"verbose\":false,\"pedantic\":true}\r\nPUB foo.* 1\r\nx\r\nPING\r\n", []string{"-ERR 'Invalid Publish Subject'", "PONG"}, false, "parse"},
	}
	s := newTestServer(t)
	healthy := mustConnect(t, s.url)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.counter(t, "flotilla_transport_errors_total", "reason", tc.reason)
			rc := dialRaw(t, s)
			rc.send(tc.send)
			rc.expect(tc.expect...)
			if tc.closed {
				rc.expectClosed()
			}
			if got := s.counter(t, "flotilla_transport_errors_total", "reason", tc.reason); got != before+1 {
				t.Errorf("errors_total{reason=%q} %v -> %v", tc.reason, before, got)
			}
			mustFlush(t, healthy) // the server still serves everyone else
		})
	}
}

// Input split into tiny writes (half lines) is reassembled.
func TestServer_HalfLines(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	rc := dialRaw(t, s)
	script := "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB half 1\r\nPUB half 5\r\nhello\r\nPING\r\n"
	for i := 0; i < len(script); i++ {
		rc.send(script[i : i+1])
	}
	rc.expect("MSG half 1 5", "hello", "PONG")
}

func TestServer_Verbose(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	rc := dialRaw(t, s)
	rc.send("CONNECT {\"verbose\":true}\r\nSUB v 1\r\nPUB v 2\r\nhi\r\nUNSUB 1\r\nPING\r\n")
	// Each op's +OK comes before the deliveries it causes, as in nats-server.
	rc.expect("+OK", "+OK", "+OK", "MSG v 1 2", "hi", "+OK", "PONG")
}

// A client that connects and says nothing is dropped after the auth
// timeout with the standard text.
func TestServer_AuthTimeout(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *Config) { c.AuthTimeout = 100 * time.Millisecond })
	rc := dialRaw(t, s)
	rc.expect("-ERR 'Authentication Timeout'")
	rc.expectClosed()
	eventuallyCounter(t, s, 1, "flotilla_transport_errors_total", "reason", "auth")
}

func TestServer_UserPassword(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *Config) { c.Username, c.Password = "alice", "s3cret" })
	if _, err := nats.Connect(s.url, nats.UserInfo("alice", "wrong")); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("wrong password: %v", err)
	}
	mustConnect(t, s.url, nats.UserInfo("alice", "s3cret"))
	rc := dialRaw(t, s)
	rc.send("SUB foo 1\r\n") // nothing but CONNECT may come first
	rc.expect("-ERR 'Authorization Violation'")
	rc.expectClosed()
}

// A client that stops answering PINGs is closed as stale.
func TestServer_StaleConnection(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *Config) { c.PingInterval = 50 * time.Millisecond; c.MaxPingsOut = 2 })
	rc := dialRaw(t, s)
	rc.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\n")
	rc.expect("PING", "PING", "-ERR 'Stale Connection'")
	rc.expectClosed()
	eventuallyCounter(t, s, 1, "flotilla_transport_errors_total", "reason", "stale")

	// A client that answers stays connected well past MaxPingsOut rounds.
	nc := mustConnect(t, s.url)
	for range 5 {
		rc2 := dialRaw(t, s) // make the server do some work while pings flow
		rc2.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n")
		rc2.expect("PONG")
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if s.counter(t, "flotilla_transport_messages_in_total") < 0 {
			return fmt.Errorf("unreachable")
		}
		if !nc.IsConnected() {
			return fmt.Errorf("answering client was disconnected")
		}
		return nil
	})
}

func TestServer_MaxConnections(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *Config) { c.MaxConnections = 2 })
	mustConnect(t, s.url)
	mustConnect(t, s.url)
	_, err := nats.Connect(s.url, nats.NoReconnect())
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "maximum connections exceeded") {
		t.Fatalf("third connection: %v, want maximum connections exceeded", err)
	}
}

func TestServer_MaxSubscriptions(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *Config) { c.MaxSubscriptions = 2 })
	rc := dialRaw(t, s)
	rc.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPING\r\n")
	rc.expect("-ERR 'maximum subscriptions exceeded'", "PONG")
	// The connection stays usable.
	rc.send("PUB a 1\r\nx\r\nPING\r\n")
	rc.expect("MSG a 1 1", "x", "PONG")
}

// A subscriber that never reads is disconnected as a slow consumer without
// slowing the publisher or other subscribers down.
func TestServer_SlowConsumer_DoesNotSlowOthers(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *Config) {
		c.MaxPayload = 64 << 10
		c.MaxPending = 1 << 20
		c.WriteDeadline = 200 * time.Millisecond
	})
	// The slow subscriber subscribes, then never reads. A small receive
	// buffer makes the kernel stop accepting data quickly.
	slow, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	_ = slow.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := slow.Write([]byte("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB flood 1\r\n")); err != nil {
		t.Fatal(err)
	}

	fast := mustConnect(t, s.url)
	fastSub := mustSubSync(t, fast, "flood")
	if err := fastSub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, fast)
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := s.Varz().Subscriptions; n != 2 {
			return fmt.Errorf("%d subscriptions", n)
		}
		return nil
	})

	pub := mustConnect(t, s.url)
	payload := bytes.Repeat([]byte("x"), 1024)
	const n = 8000 // 8 MiB: far beyond the slow client's 1 MiB allowance
	start := time.Now()
	for i := range n {
		if err := pub.Publish("flood", payload); err != nil {
			t.Fatal(err)
		}
		if i%64 == 0 {
			// Pace the publisher a little so the reading subscriber's
			// backlog stays far below its allowance even under -race.
			mustFlush(t, pub)
		}
	}
	mustFlush(t, pub)
	for range n {
		mustNext(t, fastSub)
	}
	if d := time.Since(start); d > testutil.Scale(10*time.Second) {
		t.Errorf("publishing took %v: the slow consumer slowed everyone down", d)
	}
	eventuallyCounter(t, s, 1, "flotilla_transport_slow_consumers_total")
	if !pub.IsConnected() || !fast.IsConnected() {
		t.Fatal("healthy clients were disconnected")
	}
}

// Over the publish rate limit the server stops reading instead of dropping:
// every message arrives, and it takes as long as the limit says.
func TestServer_RateLimit_ThrottlesWithoutLoss(t *testing.T) {
	t.Parallel()
	const rate, msgs = 200.0, 300 // burst of 200, then 100 more at 200/s: >= ~0.5 s
	s := newTestServer(t, func(c *Config) { c.RateLimitMsgs = rate })
	sub := mustConnect(t, s.url)
	ss := mustSubSync(t, sub, "limited")
	mustFlush(t, sub)
	pub := mustConnect(t, s.url)
	start := time.Now()
	for i := range msgs {
		if err := pub.Publish("limited", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, pub)
	elapsed := time.Since(start)
	for i := range msgs {
		if m := mustNext(t, ss); string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, m.Data)
		}
	}
	if min := time.Duration(float64(msgs-rate) / rate * float64(time.Second)); elapsed < min*9/10 {
		t.Fatalf("%d messages at %v/s took %v, want at least %v", msgs, rate, elapsed, min)
	}
}

func TestServer_RateLimitBytes(t *testing.T) {
	t.Parallel()
	// 64 KiB/s with a 64 KiB burst; 160 KiB of payload needs >= ~1.4 s.
	s := newTestServer(t, func(c *Config) { c.MaxPayload = 16 << 10; c.RateLimitBytes = 64 << 10 })
	pub := mustConnect(t, s.url)
	payload := bytes.Repeat([]byte("y"), 16<<10)
	start := time.Now()
	for range 10 {
		if err := pub.Publish("bytes", payload); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, pub)
	if elapsed := time.Since(start); elapsed < 1300*time.Millisecond {
		t.Fatalf("160 KiB at 64 KiB/s took %v", elapsed)
	}
}

// Graceful shutdown: clients get the lame-duck INFO, what was queued is
// flushed, new connections are refused.
func TestServer_Shutdown_LameDuckAndFlush(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	ldm := make(chan struct{}, 1)
	nc := mustConnect(t, s.url, nats.LameDuckModeHandler(func(*nats.Conn) { ldm <- struct{}{} }), nats.NoReconnect())
	_ = nc
	rc := dialRaw(t, s)
	rc.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nSUB last 1\r\nPUB last 4\r\nbye!\r\nPING\r\n")
	rc.expect("MSG last 1 4", "bye!", "PONG")

	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case <-ldm:
	case <-time.After(testutil.Scale(5 * time.Second)):
		t.Fatal("no lame duck notification")
	}
	if l := rc.line(); !strings.HasPrefix(l, "INFO ") || !strings.Contains(l, `"ldm":true`) {
		t.Fatalf("got %q, want INFO with ldm:true", l)
	}
	rc.expectClosed()
	if c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("new connection accepted after shutdown")
	}
}

// A client that never reads cannot hold shutdown beyond the grace period.
func TestServer_Shutdown_BoundedByContext(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *Config) { c.WriteDeadline = time.Minute; c.MaxPending = 64 << 20 })
	stuck, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	_ = stuck.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := stuck.Write([]byte("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB stuck 1\r\n")); err != nil {
		t.Fatal(err)
	}
	pub := mustConnect(t, s.url)
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := s.Varz().Subscriptions; n != 1 {
			return fmt.Errorf("%d subscriptions", n)
		}
		return nil
	})
	payload := bytes.Repeat([]byte("z"), 32<<10)
	for range 200 {
		if err := pub.Publish("stuck", payload); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, pub)
	ctx, cancel := contextWithTimeout(300 * time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err == nil {
		t.Fatal("shutdown reported a clean drain although a client never read")
	}
	if d := time.Since(start); d > testutil.Scale(3*time.Second) {
		t.Fatalf("shutdown took %v", d)
	}
}

// 1,000 connect/disconnect cycles leave no goroutines behind.
func TestServer_NoGoroutineLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	// Not parallel: counts goroutines of the whole process.
	s := newTestServer(t)
	warm := mustConnect(t, s.url)
	warm.Close()
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := s.Varz().Connections; n != 0 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})
	before := runtime.NumGoroutine()
	for i := range 1000 {
		nc, err := nats.Connect(s.url, nats.NoReconnect())
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if i%2 == 0 {
			if _, err := nc.SubscribeSync("leak.test"); err != nil {
				t.Fatal(err)
			}
			_ = nc.Flush()
		}
		nc.Close()
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := s.Varz().Connections; n != 0 {
			return fmt.Errorf("%d connections still open", n)
		}
		if d := runtime.NumGoroutine() - before; d > 5 {
			return fmt.Errorf("%d goroutines more than before", d)
		}
		return nil
	})
	if n := s.Varz().Subscriptions; n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
}

// After Shutdown nothing of the server is left running.
func TestServer_ShutdownLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := newTestServer(t)
	nc, err := nats.Connect(s.url, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.SubscribeSync("x"); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	nc.Close()
}

// A subscriber that reads, only slower than its publisher, paces the
// publisher (nats-server's stall) instead of being cut off as a slow
// consumer.
func TestServer_Backpressure_PacesPublisher(t *testing.T) {
	t.Parallel()
	// The allowance leaves more than one 64 KiB read buffer of room above
	// the stall threshold (3/4), since a publisher is paused between reads.
	s := newTestServer(t, func(c *Config) { c.MaxPayload = 64 << 10; c.MaxPending = 1 << 20 })
	sub := mustConnect(t, s.url)
	ss := mustSubSync(t, sub, "paced")
	if err := ss.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, sub)
	pub := mustConnect(t, s.url)
	payload := bytes.Repeat([]byte("p"), 1024)
	const n = 20000 // 20 MiB through a 1 MiB allowance, unpaced by the client
	for range n {
		if err := pub.Publish("paced", payload); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, pub)
	for i := range n {
		if _, err := ss.NextMsg(testutil.Scale(10 * time.Second)); err != nil {
			t.Fatalf("message %d: %v (slow consumers: %v)", i, err, s.counter(t, "flotilla_transport_slow_consumers_total"))
		}
	}
	if got := s.counter(t, "flotilla_transport_slow_consumers_total"); got != 0 {
		t.Fatalf("%v slow consumers, want 0", got)
	}
}
