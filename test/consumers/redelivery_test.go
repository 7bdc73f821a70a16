package consumers

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestConsumers_RedeliveryAndMaxDeliver leaves a message unacked: it comes
// back after each ack_wait with a higher delivery count and a new consumer
// sequence, exactly max_deliver times, and then never again.
func TestConsumers_RedeliveryAndMaxDeliver(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "REDO", Subjects: []string{"redo.>"}, Storage: jetstream.MemoryStorage})
	w := scaled(ackWait)
	const maxDeliver = 3
	c := mustCreateConsumer(t, js, "REDO", jetstream.ConsumerConfig{
		Durable: "R", AckPolicy: jetstream.AckExplicitPolicy, AckWait: w, MaxDeliver: maxDeliver,
	})
	seq := mustPublish(t, pjs, "redo.x", []byte("again"))

	var last time.Time
	for n := uint64(1); n <= maxDeliver; n++ {
		m := fetchOne(t, c, 10*time.Second)
		now := time.Now()
		md := meta(t, m)
		if md.Sequence.Stream != seq || md.NumDelivered != n || md.Sequence.Consumer != n || string(m.Data()) != "again" {
			t.Fatalf("delivery %d: stream seq %d delivered %d consumer seq %d data %q", n, md.Sequence.Stream, md.NumDelivered, md.Sequence.Consumer, m.Data())
		}
		if n > 1 && now.Sub(last) < w-50*time.Millisecond {
			t.Fatalf("delivery %d came %v after the previous one, ack_wait is %v", n, now.Sub(last), w)
		}
		last = now
		want := state{Delivered: [2]uint64{n, seq}, AckPending: 1}
		if n > 1 {
			want.Redelivered = 1
		}
		assertState(t, c, want)
	}
	// max_deliver reached: a pull request spanning several ack waits gets
	// nothing.
	fetchNone(t, c, 3*ackWait)
	// Its last ack wait has passed: it no longer awaits an ack. (nats-server
	// leaves ack_floor at 0 and num_redelivered at 1 here; not compared.)
	info := mustInfo(t, c)
	t.Logf("after max_deliver: %v", stateOf(info))
	if info.Delivered.Consumer != maxDeliver || info.NumAckPending != 0 || info.NumPending != 0 {
		t.Fatalf("after max_deliver: %v, want delivered consumer seq %d, nothing ack pending or pending", stateOf(info), maxDeliver)
	}

	// The next message is delivered normally.
	next := mustPublish(t, pjs, "redo.x", []byte("next"))
	m := fetchOne(t, c, 10*time.Second)
	if md := meta(t, m); md.Sequence.Stream != next || md.NumDelivered != 1 || md.Sequence.Consumer != maxDeliver+1 {
		t.Fatalf("next message: stream seq %d delivered %d consumer seq %d", md.Sequence.Stream, md.NumDelivered, md.Sequence.Consumer)
	}
	mustDoubleAck(t, m)
}

// TestConsumers_Backoff checks that backoff replaces ack_wait: the n-th
// redelivery waits backoff[n-1] (the last entry repeating).
func TestConsumers_Backoff(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "BACK", Subjects: []string{"back.>"}, Storage: jetstream.MemoryStorage})
	short, long := scaled(300*time.Millisecond), scaled(1500*time.Millisecond)
	c := mustCreateConsumer(t, js, "BACK", jetstream.ConsumerConfig{
		Durable: "B", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 4,
		BackOff: []time.Duration{short, long},
	})
	// The first backoff becomes the ack wait.
	if info := mustInfo(t, c); info.Config.AckWait != short || len(info.Config.BackOff) != 2 {
		t.Fatalf("config ack_wait %v backoff %v, want %v and [%v %v]", info.Config.AckWait, info.Config.BackOff, short, short, long)
	}
	mustPublish(t, pjs, "back.x", []byte("x"))

	var at []time.Time
	for n := uint64(1); n <= 4; n++ {
		m := fetchOne(t, c, 10*time.Second)
		at = append(at, time.Now())
		if md := meta(t, m); md.NumDelivered != n {
			t.Fatalf("delivery %d has delivered count %d", n, md.NumDelivered)
		}
	}
	gaps := []time.Duration{at[1].Sub(at[0]), at[2].Sub(at[1]), at[3].Sub(at[2])}
	t.Logf("redelivery gaps %v (backoff %v, %v)", gaps, short, long)
	const slack = 50 * time.Millisecond
	if gaps[0] < short-slack || gaps[0] >= long {
		t.Errorf("first redelivery after %v, want about %v", gaps[0], short)
	}
	if gaps[1] < long-slack || gaps[2] < long-slack {
		t.Errorf("later redeliveries after %v and %v, want at least %v", gaps[1], gaps[2], long)
	}
	fetchNone(t, c, 2*1500*time.Millisecond)
}

// TestConsumers_MaxAckPending: with max_ack_pending 10 and no acks only ten
// messages are handed out; every ack lets one more through.
func TestConsumers_MaxAckPending(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "MAP", Subjects: []string{"map.>"}, Storage: jetstream.MemoryStorage})
	c := mustCreateConsumer(t, js, "MAP", jetstream.ConsumerConfig{Durable: "M", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10})
	for i := range 50 {
		mustPublish(t, pjs, "map.x", body(i))
	}
	got := fetch(t, c, 50, jetstream.FetchMaxWait(scaled(time.Second)))
	if seqs := streamSeqs(t, got); len(seqs) != 10 || seqs[0] != 1 || seqs[9] != 10 {
		t.Fatalf("first fetch of 50 got stream seqs %v, want 1..10", seqs)
	}
	assertState(t, c, state{Delivered: [2]uint64{10, 10}, AckPending: 10, Pending: 40})
	// Still at the limit: nothing more.
	if more := fetch(t, c, 50, jetstream.FetchMaxWait(scaled(500*time.Millisecond))); len(more) != 0 {
		t.Fatalf("got %d more while at max_ack_pending", len(more))
	}
	// Acking five frees five slots.
	for _, m := range got[:5] {
		mustDoubleAck(t, m)
	}
	more := fetch(t, c, 50, jetstream.FetchMaxWait(scaled(time.Second)))
	if seqs := streamSeqs(t, more); len(seqs) != 5 || seqs[0] != 11 || seqs[4] != 15 {
		t.Fatalf("after 5 acks got stream seqs %v, want 11..15", seqs)
	}
	assertState(t, c, state{Delivered: [2]uint64{15, 15}, AckFloor: [2]uint64{5, 5}, AckPending: 10, Pending: 35})
	// A request waiting at the limit is served as acks arrive.
	b, err := c.Fetch(3, jetstream.FetchMaxWait(scaled(10*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range append(got[5:], more...)[:3] {
		mustDoubleAck(t, m)
	}
	if seqs := streamSeqs(t, drain(t, b)); len(seqs) != 3 || seqs[0] != 16 || seqs[2] != 18 {
		t.Fatalf("waiting request got stream seqs %v, want 16..18", seqs)
	}
}
