package consumers

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestConsumers_Push runs a durable push consumer: messages stored before
// the subscription and after it arrive in order on the deliver subject,
// with headers and ack metadata, and acks work as for pull consumers.
func TestConsumers_Push(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	ctx := ctxT(t, 30*time.Second)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "PUSH", Subjects: []string{"push.>"}, Storage: jetstream.MemoryStorage})
	const before, after = 10, 10
	publish := func(i int) {
		msg := nats.NewMsg(fmt.Sprintf("push.%d", i%3))
		msg.Data = body(i)
		msg.Header.Set("Index", fmt.Sprint(i))
		if _, err := pjs.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	for i := range before {
		publish(i)
	}
	pc, err := js.CreateOrUpdatePushConsumer(ctx, "PUSH", jetstream.ConsumerConfig{
		Durable: "P", DeliverSubject: nats.NewInbox(), AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatalf("create push consumer: %v", err)
	}
	// A pull-consumer handle on a push consumer is refused client-side.
	if _, err := js.Consumer(ctx, "PUSH", "P"); err == nil {
		t.Fatal("js.Consumer on a push consumer succeeded")
	}

	ch := make(chan jetstream.Msg, before+after)
	cc, err := pc.Consume(func(m jetstream.Msg) { ch <- m },
		logConsumeErrors(t, "push"))
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	defer cc.Stop()
	timeout := time.After(scaled(20 * time.Second))
	for i := range before + after {
		if i == before {
			info, err := pc.Info(ctx)
			if err != nil || !info.PushBound {
				t.Fatalf("push consumer info while consuming: push_bound false (%v)", err)
			}
			for j := before; j < before+after; j++ {
				publish(j)
			}
		}
		var m jetstream.Msg
		select {
		case m = <-ch:
		case <-timeout:
			t.Fatalf("push consumer got %d of %d", i, before+after)
		}
		md := meta(t, m)
		if md.Sequence.Stream != uint64(i+1) || md.Sequence.Consumer != uint64(i+1) || md.NumDelivered != 1 || md.Consumer != "P" {
			t.Fatalf("message %d: metadata %+v", i, md)
		}
		if i < before && md.NumPending != uint64(before-i-1) {
			t.Fatalf("message %d: pending %d, want %d", i, md.NumPending, before-i-1)
		}
		if m.Subject() != fmt.Sprintf("push.%d", i%3) || string(m.Data()) != string(body(i)) || m.Headers().Get("Index") != fmt.Sprint(i) {
			t.Fatalf("message %d: %s %q %v", i, m.Subject(), m.Data(), m.Headers())
		}
		mustDoubleAck(t, m)
	}
	info, err := pc.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = before + after
	if got := stateOf(info); got != (state{Delivered: [2]uint64{n, n}, AckFloor: [2]uint64{n, n}}) {
		t.Fatalf("push consumer state %v", got)
	}
}

// TestConsumers_KVWatchKeysHistory covers the KV operations that run on
// consumers: Watch (initial values, the nil marker, then live updates),
// Keys and History.
func TestConsumers_KVWatchKeysHistory(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	ctx := ctxT(t, 30*time.Second)
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "CFG", History: 5}); err != nil {
		t.Fatalf("create kv: %v", err)
	}
	pkv, err := pjs.KeyValue(ctx, "CFG")
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "CFG")
	if err != nil {
		t.Fatal(err)
	}
	put := func(key, value string) uint64 {
		t.Helper()
		rev, err := pkv.Put(ctx, key, []byte(value))
		if err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		return rev
	}
	put("a", "a1") // rev 1
	put("b", "b1") // rev 2
	put("a", "a2") // rev 3

	type entry struct {
		key, value string
		rev, delta uint64
		op         jetstream.KeyValueOp
	}
	// next reads one update; nil entries (the end of initial values) come
	// back as the zero entry with ok false.
	next := func(w jetstream.KeyWatcher) (entry, bool) {
		t.Helper()
		select {
		case e := <-w.Updates():
			if e == nil {
				return entry{}, false
			}
			return entry{e.Key(), string(e.Value()), e.Revision(), e.Delta(), e.Operation()}, true
		case <-time.After(scaled(10 * time.Second)):
			t.Fatal("no watch update within 10s")
			return entry{}, false
		}
	}
	expect := func(w jetstream.KeyWatcher, want ...entry) {
		t.Helper()
		for _, we := range want {
			got, ok := next(w)
			if we == (entry{}) {
				if ok {
					t.Fatalf("got %+v, want the nil end-of-initial-values marker", got)
				}
				continue
			}
			if !ok || got != we {
				t.Fatalf("got %+v (ok %v), want %+v", got, ok, we)
			}
		}
	}
	var marker entry

	// WatchAll: the latest value of every key in revision order, with
	// delta counting down to 0, then nil, then live updates.
	all, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatalf("watch all: %v", err)
	}
	defer all.Stop()
	expect(all,
		entry{"b", "b1", 2, 1, jetstream.KeyValuePut},
		entry{"a", "a2", 3, 0, jetstream.KeyValuePut},
		marker)

	// Watch one key with its history.
	hist, err := kv.Watch(ctx, "a", jetstream.IncludeHistory())
	if err != nil {
		t.Fatalf("watch a with history: %v", err)
	}
	defer hist.Stop()
	expect(hist,
		entry{"a", "a1", 1, 1, jetstream.KeyValuePut},
		entry{"a", "a2", 3, 0, jetstream.KeyValuePut},
		marker)

	put("c", "c1") // rev 4
	// rev 5: a delete marker for b
	if err := pkv.Delete(ctx, "b"); err != nil {
		t.Fatalf("delete b: %v", err)
	}
	put("a", "a3") // rev 6
	expect(all,
		entry{"c", "c1", 4, 0, jetstream.KeyValuePut},
		entry{"b", "", 5, 0, jetstream.KeyValueDelete},
		entry{"a", "a3", 6, 0, jetstream.KeyValuePut})
	expect(hist, entry{"a", "a3", 6, 0, jetstream.KeyValuePut})

	// A watch on a bucket with nothing matching sends only the marker.
	none, err := kv.Watch(ctx, "nothing.here")
	if err != nil {
		t.Fatal(err)
	}
	defer none.Stop()
	expect(none, marker)

	keys, err := kv.Keys(ctx)
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"a", "c"}) {
		t.Fatalf("keys %v, want [a c] (b is deleted)", keys)
	}
	history, err := kv.History(ctx, "a")
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	var revs []uint64
	var values []string
	for _, e := range history {
		revs = append(revs, e.Revision())
		values = append(values, string(e.Value()))
	}
	if !slices.Equal(revs, []uint64{1, 3, 6}) || !slices.Equal(values, []string{"a1", "a2", "a3"}) {
		t.Fatalf("history of a: revisions %v values %v", revs, values)
	}
	if _, err := kv.History(ctx, "never"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("history of a missing key: %v, want ErrKeyNotFound", err)
	}
}
