package jetstream

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/internal/testcluster"
	"github.com/flotilla/flotilla/internal/testutil"
)

// TestConsumerSmoke is a quick end-to-end pass over a durable pull
// consumer through a follower: Fetch with double acks, info, Consume.
func TestConsumerSmoke(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.WithClients())
	_, js := connectJS(t, follower(t, c))
	s := mustCreateStream(t, js, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	for i := range 10 {
		if _, err := js.Publish(ctxT(t, 5*time.Second), "s.a", body(i)); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := s.CreateOrUpdateConsumer(ctxT(t, 5*time.Second), jetstream.ConsumerConfig{Durable: "D", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("info %+v", cons.CachedInfo())
	b, err := cons.Fetch(5, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range b.Messages() {
		md, _ := m.Metadata()
		t.Logf("%s %s %+v", m.Subject(), m.Data(), md)
		if err := m.DoubleAck(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if b.Error() != nil || n != 5 {
		t.Fatalf("n=%d err=%v", n, b.Error())
	}
	info, err := cons.Info(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("info after: delivered %+v floor %+v pending %d ackpending %d", info.Delivered, info.AckFloor, info.NumPending, info.NumAckPending)
	var got atomic.Int64
	cc, err := cons.Consume(func(m jetstream.Msg) { got.Add(1); m.Ack() })
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cc.Stop()
	if got.Load() != 5 {
		t.Fatalf("consume got %d", got.Load())
	}
}

// TestConsumerSmoke_OrderedAndKVWatch reads a stream with an ordered
// consumer and watches a KV bucket (push consumer with flow control).
func TestConsumerSmoke_OrderedAndKVWatch(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.WithClients())
	_, js := connectJS(t, follower(t, c))
	s := mustCreateStream(t, js, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	for i := range 20 {
		js.PublishAsync(fmt.Sprintf("s.%d", i%3), body(i))
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second): // fail, do not hang, if an ack is lost
		t.Fatalf("%d acks outstanding", js.PublishAsyncPending())
	}
	oc, err := s.OrderedConsumer(ctxT(t, 5*time.Second), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := oc.Messages()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		m, err := it.Next()
		if err != nil {
			t.Fatal(i, err)
		}
		md, _ := m.Metadata()
		if md.Sequence.Stream != uint64(i+1) {
			t.Fatalf("got seq %d want %d", md.Sequence.Stream, i+1)
		}
	}
	it.Stop()
	kv, err := js.CreateKeyValue(ctxT(t, 5*time.Second), jetstream.KeyValueConfig{Bucket: "B"})
	if err != nil {
		t.Fatal(err)
	}
	kv.Put(ctxT(t, 5*time.Second), "a", []byte("1"))
	kv.Put(ctxT(t, 5*time.Second), "b", []byte("2"))
	kv.Put(ctxT(t, 5*time.Second), "a", []byte("3"))
	w, err := kv.WatchAll(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	timeout := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case e := <-w.Updates():
			if e == nil {
				done = true
				break
			}
			got = append(got, e.Key()+"="+string(e.Value()))
		case <-timeout:
			t.Fatalf("watch timeout, got %v", got)
		}
	}
	t.Logf("initial %v", got)
	kv.Put(ctxT(t, 5*time.Second), "c", []byte("4"))
	select {
	case e := <-w.Updates():
		t.Logf("update %s=%s", e.Key(), e.Value())
	case <-time.After(5 * time.Second):
		t.Fatal("no update")
	}
	keys, err := kv.Keys(ctxT(t, 5*time.Second))
	t.Logf("keys %v %v", keys, err)
	h, err := kv.History(ctxT(t, 5*time.Second), "a")
	t.Logf("history %d %v", len(h), err)
}

// TestConsumerSmoke_Retention checks workqueue and interest streams end to
// end: acked messages leave the stream.
func TestConsumerSmoke_Retention(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.WithClients())
	_, js := connectJS(t, follower(t, c))
	ctx := ctxT(t, 20*time.Second)
	for _, tc := range []struct {
		name      string
		retention jetstream.RetentionPolicy
	}{{"WQ", jetstream.WorkQueuePolicy}, {"INT", jetstream.InterestPolicy}} {
		s := mustCreateStream(t, js, jetstream.StreamConfig{Name: tc.name, Subjects: []string{tc.name + ".>"}, Retention: tc.retention})
		cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "W", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if _, err := js.Publish(ctx, tc.name+".job", body(i)); err != nil {
				t.Fatal(err)
			}
		}
		b, err := cons.Fetch(5, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range b.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
			n++
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 5 || info.State.Msgs != 0 || info.State.LastSeq != 5 {
			t.Fatalf("%s: fetched %d, stream state %+v; want 5 fetched and an empty stream", tc.name, n, info.State)
		}
	}
}

// TestConsumerSmoke_LegacyAPI uses nats.go's legacy JetStream API: push
// subscriptions (plain, durable queue, ordered) and PullSubscribe.Fetch
// (no_wait with expires).
func TestConsumerSmoke_LegacyAPI(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.WithClients())
	nc, js := connectJS(t, follower(t, c))
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "L", Subjects: []string{"l.>"}})
	for i := range 10 {
		if _, err := js.Publish(ctxT(t, 5*time.Second), "l.x", body(i)); err != nil {
			t.Fatal(err)
		}
	}
	old, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sub  func(h nats.MsgHandler) (*nats.Subscription, error)
	}{
		{"push", func(h nats.MsgHandler) (*nats.Subscription, error) { return old.Subscribe("l.>", h) }},
		{"durable queue", func(h nats.MsgHandler) (*nats.Subscription, error) {
			return old.QueueSubscribe("l.>", "workers", h, nats.Durable("QD"))
		}},
		{"ordered", func(h nats.MsgHandler) (*nats.Subscription, error) {
			return old.Subscribe("l.>", h, nats.OrderedConsumer())
		}},
	} {
		var got atomic.Int64
		sub, err := tc.sub(func(m *nats.Msg) {
			got.Add(1)
			_ = m.Ack()
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		testutil.Eventually(t, 10*time.Second, func() error {
			if n := got.Load(); n != 10 {
				return fmt.Errorf("%s: %d of 10 messages", tc.name, n)
			}
			return nil
		})
		_ = sub.Unsubscribe()
	}
	ps, err := old.PullSubscribe("l.x", "PD")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := ps.Fetch(10, nats.MaxWait(5*time.Second))
	if err != nil || len(msgs) == 0 {
		t.Fatalf("legacy pull fetch: %d messages, %v", len(msgs), err)
	}
	for _, m := range msgs {
		if err := m.AckSync(); err != nil {
			t.Fatal(err)
		}
	}
}
