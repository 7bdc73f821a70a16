package differential

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla/flotilla/internal/testutil"
)

// TestDifferential_NatsGo runs one sequence of nats.go calls against
// nats-server and against Flotilla and requires the same observations:
// what each subscription received, request/reply results, the
// no-responders error, headers, and auto-unsubscribe.
func TestDifferential_NatsGo(t *testing.T) {
	t.Parallel()
	want := observeNatsGo(t, "nats://"+startNATS(t, serverConfig{}))
	got := observeNatsGo(t, "nats://"+startFlotilla(t, serverConfig{}))
	if !slices.Equal(want, got) {
		t.Errorf("nats.go observations differ:\n%s", lineDiff(want, got))
		return
	}
	t.Logf("observations (identical):\n%s", strings.Join(want, "\n"))
}

// observer records what a client sees, one line per observation.
type observer struct {
	t   *testing.T
	out []string
}

func (o *observer) add(format string, args ...any) {
	o.out = append(o.out, fmt.Sprintf(format, args...))
}

// drain records every message already queued on sub. Callers flush the
// subscribing connection first: its PONG arrives after every MSG the server
// queued before it, so Pending is exact and no wait is needed.
func (o *observer) drain(name string, sub *nats.Subscription) {
	o.t.Helper()
	n, _, err := sub.Pending()
	if err != nil {
		o.add("%s: pending: %v", name, err)
		return
	}
	o.add("%s: %d pending", name, n)
	for range n {
		m, err := sub.NextMsg(testutil.Scale(time.Second))
		if err != nil {
			o.add("%s: next: %v", name, err)
			return
		}
		o.add("%s: %s reply=%q data=%q header=%s", name, m.Subject, m.Reply, m.Data, formatHeader(m.Header))
	}
}

// formatHeader renders a header deterministically (keys sorted).
func formatHeader(h nats.Header) string {
	if len(h) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%q", k, h[k])
	}
	b.WriteString("}")
	return b.String()
}

// mustNatsConnect connects a nats.go client that does not reconnect, so a
// server closing the connection shows up in the observations.
func mustNatsConnect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.Name(t.Name()), nats.Timeout(testutil.Scale(5 * time.Second)), nats.NoReconnect()}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func mustNatsFlush(t *testing.T, ncs ...*nats.Conn) {
	t.Helper()
	for _, nc := range ncs {
		if err := nc.FlushTimeout(testutil.Scale(5 * time.Second)); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
}

// observeNatsGo plays the client sequence against url and returns what it
// observed. Client-side failures that are part of the observation (request
// errors) are recorded; setup failures fail the test.
func observeNatsGo(t *testing.T, url string) []string {
	t.Helper()
	o := &observer{t: t}
	sub := mustNatsConnect(t, url)
	pub := mustNatsConnect(t, url)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	subSync := func(subject string) *nats.Subscription {
		t.Helper()
		s, err := sub.SubscribeSync(subject)
		must(err)
		return s
	}

	// Wildcards and a single-member queue group (deterministic).
	star := subSync("orders.*")
	full := subSync("orders.>")
	queue, err := sub.QueueSubscribeSync("work.*", "workers")
	must(err)
	mustNatsFlush(t, sub)
	for _, subj := range []string{"orders.eu", "orders.eu.late", "work.a", "other"} {
		must(pub.Publish(subj, []byte("to "+subj)))
	}
	mustNatsFlush(t, pub, sub)
	o.drain("star", star)
	o.drain("full", full)
	o.drain("queue", queue)

	// Headers, with and without a payload, and a message to a reply.
	hdrs := subSync("hdr")
	mustNatsFlush(t, sub)
	m := nats.NewMsg("hdr")
	m.Header.Add("A", "1")
	m.Header.Add("A", "2")
	m.Header.Set("Trace-Id", "xyz")
	m.Data = []byte("with payload")
	must(pub.PublishMsg(m))
	m = nats.NewMsg("hdr")
	m.Header.Set("Only", "header")
	must(pub.PublishMsg(m))
	must(pub.PublishRequest("hdr", "my.reply", []byte("plain")))
	mustNatsFlush(t, pub, sub)
	o.drain("hdr", hdrs)

	// Request/reply: a responder echoes the request with a header added.
	responder, err := sub.Subscribe("svc.echo", func(m *nats.Msg) {
		r := nats.NewMsg(m.Reply)
		r.Header.Set("Echoed", "yes")
		r.Data = append([]byte("echo: "), m.Data...)
		_ = m.RespondMsg(r)
	})
	must(err)
	mustNatsFlush(t, sub)
	reply, err := pub.Request("svc.echo", []byte("hi"), testutil.Scale(5*time.Second))
	if err != nil {
		o.add("request: %v", err)
	} else {
		o.add("request: data=%q header=%s", reply.Data, formatHeader(reply.Header))
	}
	// The same through the old request style (a subscription per request,
	// auto-unsubscribed after one reply).
	oldStyle := mustNatsConnect(t, url, nats.UseOldRequestStyle())
	reply, err = oldStyle.Request("svc.echo", []byte("old"), testutil.Scale(5*time.Second))
	if err != nil {
		o.add("old-style request: %v", err)
	} else {
		o.add("old-style request: data=%q", reply.Data)
	}
	must(responder.Unsubscribe())
	mustNatsFlush(t, sub)

	// No responders: nothing listens, so the server answers with a 503.
	_, err = pub.Request("svc.echo", []byte("anyone?"), testutil.Scale(5*time.Second))
	o.add("request without responders: no_responders=%v err=%v", errors.Is(err, nats.ErrNoResponders), err)
	_, err = oldStyle.Request("svc.none", []byte("anyone?"), testutil.Scale(5*time.Second))
	o.add("old-style request without responders: no_responders=%v err=%v", errors.Is(err, nats.ErrNoResponders), err)

	// Auto-unsubscribe after two messages.
	auto := subSync("auto")
	must(auto.AutoUnsubscribe(2))
	mustNatsFlush(t, sub)
	for i := range 4 {
		must(pub.Publish("auto", fmt.Appendf(nil, "auto %d", i)))
	}
	mustNatsFlush(t, pub, sub)
	o.drain("auto", auto)
	o.add("auto valid after limit: %v", auto.IsValid())

	// Unsubscribe stops delivery; the connections are still healthy.
	must(star.Unsubscribe())
	must(pub.Publish("orders.us", []byte("after unsub")))
	mustNatsFlush(t, pub, sub)
	o.drain("full", full)
	o.add("sub status: %v, pub status: %v, sub last error: %v, pub last error: %v",
		sub.Status(), pub.Status(), sub.LastError(), pub.LastError())
	return o.out
}
