package transport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla/flotilla/internal/testutil"
)

// These tests drive the server with the real nats.go client over TCP.

func TestServer_PubSub_Wildcards(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	pub := mustConnect(t, s.url)
	sub := mustConnect(t, s.url)

	exact := mustSubSync(t, sub, "orders.eu.created")
	star := mustSubSync(t, sub, "orders.*.created")
	full := mustSubSync(t, sub, "orders.>")
	other := mustSubSync(t, sub, "payments.>")
	mustFlush(t, sub)

	for _, subj := range []string{"orders.eu.created", "orders.us.created", "orders.eu.deleted.late"} {
		if err := pub.Publish(subj, []byte(subj)); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, pub)

	want := map[*nats.Subscription][]string{
		exact: {"orders.eu.created"},
		star:  {"orders.eu.created", "orders.us.created"},
		full:  {"orders.eu.created", "orders.us.created", "orders.eu.deleted.late"},
	}
	for s, subjects := range want {
		for _, subj := range subjects {
			m := mustNext(t, s)
			if m.Subject != subj || string(m.Data) != subj {
				t.Fatalf("%s got %s %q, want %s", s.Subject, m.Subject, m.Data, subj)
			}
		}
		expectNone(t, sub, s)
	}
	expectNone(t, sub, other)
}

func TestServer_QueueGroup_ExactlyOneMemberPerMessage(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	const members, msgs = 3, 300
	var mu sync.Mutex
	counts := make([]int, members)
	seen := make(map[string]int)
	done := make(chan struct{})
	total := 0
	for i := range members {
		nc := mustConnect(t, s.url)
		if _, err := nc.QueueSubscribe("work.*", "workers", func(m *nats.Msg) {
			mu.Lock()
			defer mu.Unlock()
			counts[i]++
			seen[string(m.Data)]++
			if total++; total == msgs {
				close(done)
			}
		}); err != nil {
			t.Fatal(err)
		}
		mustFlush(t, nc)
	}
	plain := mustConnect(t, s.url)
	all := mustSubSync(t, plain, "work.>")
	if err := all.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, plain)

	pub := mustConnect(t, s.url)
	for i := range msgs {
		if err := pub.Publish("work.item", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, pub)
	select {
	case <-done:
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatalf("queue group received %d of %d", total, msgs)
	}
	for i := range msgs {
		mustNext(t, all) // every plain subscriber still gets every message
		_ = i
	}
	mustFlush(t, pub)
	mu.Lock()
	defer mu.Unlock()
	if total != msgs || len(seen) != msgs {
		t.Fatalf("got %d deliveries of %d distinct messages, want %d each", total, len(seen), msgs)
	}
	for i, c := range counts {
		if c == 0 {
			t.Errorf("member %d got nothing: %v", i, counts)
		}
	}
}

func TestServer_RequestReply_BothStyles(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	responder := mustConnect(t, s.url)
	if _, err := responder.Subscribe("svc.echo", func(m *nats.Msg) {
		_ = m.Respond(append([]byte("echo:"), m.Data...))
	}); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, responder)

	newStyle := mustConnect(t, s.url)
	oldStyle := mustConnect(t, s.url, nats.UseOldRequestStyle())
	for _, nc := range []*nats.Conn{newStyle, oldStyle} {
		for i := range 20 {
			body := fmt.Sprintf("req-%d", i)
			m, err := nc.Request("svc.echo", []byte(body), testutil.Scale(5*time.Second))
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			if string(m.Data) != "echo:"+body {
				t.Fatalf("reply %q, want echo:%s", m.Data, body)
			}
		}
	}
}

func TestServer_Headers_RoundTrip(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	nc := mustConnect(t, s.url)
	sub := mustSubSync(t, nc, "hdr.test")
	mustFlush(t, nc)

	msg := nats.NewMsg("hdr.test")
	msg.Header.Set("X-Trace", "abc-123")
	msg.Header.Add("X-Multi", "one")
	msg.Header.Add("X-Multi", "two")
	msg.Data = []byte("payload")
	if err := nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	got := mustNext(t, sub)
	if got.Header.Get("X-Trace") != "abc-123" || len(got.Header.Values("X-Multi")) != 2 || string(got.Data) != "payload" {
		t.Fatalf("got headers %v data %q", got.Header, got.Data)
	}

	// A header-only message (empty payload) survives too.
	empty := nats.NewMsg("hdr.test")
	empty.Header.Set("Only", "header")
	if err := nc.PublishMsg(empty); err != nil {
		t.Fatal(err)
	}
	if got := mustNext(t, sub); got.Header.Get("Only") != "header" || len(got.Data) != 0 {
		t.Fatalf("got %v %q", got.Header, got.Data)
	}
}

func TestServer_NoResponders(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	nc := mustConnect(t, s.url)
	_, err := nc.Request("nobody.home", []byte("x"), testutil.Scale(5*time.Second))
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("request error %v, want ErrNoResponders", err)
	}
	old := mustConnect(t, s.url, nats.UseOldRequestStyle())
	if _, err := old.Request("nobody.home", []byte("x"), testutil.Scale(5*time.Second)); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("old-style request error %v, want ErrNoResponders", err)
	}
	// On the wire: the 503 carries the original subject, like nats-server
	// 2.15, and only clients that asked for no_responders get it.
	rc := dialRaw(t, s)
	rc.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"protocol\":1}\r\nSUB inbox.x 1\r\nPUB nobody.home inbox.x 1\r\nx\r\nPING\r\n")
	rc.expect("HMSG inbox.x 1 43 43", "NATS/1.0 503", "Nats-Subject: nobody.home", "", "", "PONG")
	plain := dialRaw(t, s)
	plain.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nSUB inbox.y 1\r\nPUB nobody.home inbox.y 1\r\nx\r\nPING\r\n")
	plain.expect("PONG")
}

func TestServer_MaxPayload(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *Config) { c.MaxPayload = 1024; c.MaxPending = 1 << 20 })
	nc := mustConnect(t, s.url)
	if got := nc.MaxPayload(); got != 1024 {
		t.Fatalf("INFO max_payload %d, want 1024", got)
	}
	sub := mustSubSync(t, nc, "big")
	if err := nc.Publish("big", bytes.Repeat([]byte("x"), 1024)); err != nil {
		t.Fatalf("publish at the limit: %v", err)
	}
	if m := mustNext(t, sub); len(m.Data) != 1024 {
		t.Fatalf("got %d bytes", len(m.Data))
	}
	if err := nc.Publish("big", bytes.Repeat([]byte("x"), 1025)); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("publish over the limit: %v, want ErrMaxPayload", err)
	}

	// A client that ignores INFO gets the standard -ERR and is closed.
	rc := dialRaw(t, s)
	rc.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPUB big 1025\r\n")
	rc.expect("-ERR 'Maximum Payload Violation'")
	rc.expectClosed()
	eventuallyCounter(t, s, 1, "flotilla_transport_errors_total", "reason", "limit")
}

func TestServer_AutoUnsubscribe(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	nc := mustConnect(t, s.url)
	sub := mustSubSync(t, nc, "auto")
	if err := sub.AutoUnsubscribe(3); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, nc)
	for range 10 {
		if err := nc.Publish("auto", []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, nc)
	for range 3 {
		mustNext(t, sub)
	}
	if _, err := sub.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatal("got a 4th message after UNSUB max 3")
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := s.Varz().Subscriptions; n != 0 {
			return fmt.Errorf("server still holds %d subscriptions", n)
		}
		return nil
	})
}

func TestServer_EchoOff(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	quiet := mustConnect(t, s.url, nats.NoEcho())
	loud := mustConnect(t, s.url)
	own := mustSubSync(t, quiet, "echo.test")
	loudSub := mustSubSync(t, loud, "echo.test")
	mustFlush(t, quiet)
	mustFlush(t, loud)

	if err := quiet.Publish("echo.test", []byte("from quiet")); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, quiet)
	if m := mustNext(t, loudSub); string(m.Data) != "from quiet" {
		t.Fatalf("loud got %q", m.Data)
	}
	expectNone(t, quiet, own)

	if err := loud.Publish("echo.test", []byte("from loud")); err != nil {
		t.Fatal(err)
	}
	if m := mustNext(t, own); string(m.Data) != "from loud" {
		t.Fatalf("quiet got %q", m.Data)
	}
	if m := mustNext(t, loudSub); string(m.Data) != "from loud" {
		t.Fatalf("loud did not get its own echo: %q", m.Data)
	}
}

func TestServer_ReconnectAfterRestart(t *testing.T) {
	t.Parallel()
	first := newTestServer(t)
	addr := first.Addr().String()

	reconnected := make(chan struct{}, 1)
	nc := mustConnect(t, first.url,
		nats.ReconnectWait(20*time.Millisecond),
		nats.MaxReconnects(-1),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	sub := mustSubSync(t, nc, "after.restart")
	mustFlush(t, nc)

	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// A new server on the same address: the client reconnects by itself
	// and replays its subscription.
	second := newTestServer(t, func(c *Config) { c.Addr = addr })
	select {
	case <-reconnected:
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("client did not reconnect")
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := second.Varz().Subscriptions; n != 1 {
			return fmt.Errorf("%d subscriptions replayed", n)
		}
		return nil
	})
	pub := mustConnect(t, second.url)
	if err := pub.Publish("after.restart", []byte("hello again")); err != nil {
		t.Fatal(err)
	}
	if m := mustNext(t, sub); string(m.Data) != "hello again" {
		t.Fatalf("got %q", m.Data)
	}
}

func TestServer_ConnectURLs_AsyncInfo(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.SetConnectURLs([]string{s.Addr().String()})
	discovered := make(chan struct{}, 4)
	nc := mustConnect(t, s.url, nats.DiscoveredServersHandler(func(*nats.Conn) { discovered <- struct{}{} }))
	// Another node joins: the client learns it from an async INFO.
	s.SetConnectURLs([]string{s.Addr().String(), "127.0.0.1:1"})
	select {
	case <-discovered:
	case <-time.After(testutil.Scale(5 * time.Second)):
		t.Fatal("no discovered-servers callback")
	}
	if got := nc.DiscoveredServers(); len(got) != 1 || got[0] != "nats://127.0.0.1:1" {
		t.Fatalf("discovered %v", got)
	}
	// A raw client sees connect_urls in its first INFO too.
	rc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	line, err := bufio.NewReader(rc).ReadString('\n')
	if err != nil || !strings.Contains(line, `"connect_urls":["127.0.0.1:1",`) {
		t.Fatalf("INFO %q (%v)", line, err)
	}
}
