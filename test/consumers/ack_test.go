package consumers

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ackWait is the ack wait of the ack and redelivery tests: long enough for
// a -race client to act within it, short enough to wait for it.
const ackWait = time.Second

// TestConsumers_Acks covers every kind of acknowledgement. Each subtest
// has its own consumer filtered to its own subject of one stream.
func TestConsumers_Acks(t *testing.T) {
	tg := newTarget(t)
	nc, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "ACKS", Subjects: []string{"acks.>"}, Storage: jetstream.MemoryStorage})
	w := scaled(ackWait)
	// newConsumer publishes n messages on acks.<name> and returns a consumer
	// that sees only them.
	newConsumer := func(t *testing.T, name string, n int) jetstream.Consumer {
		t.Helper()
		subject := "acks." + name
		c := mustCreateConsumer(t, js, "ACKS", jetstream.ConsumerConfig{
			Durable: name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: w, FilterSubject: subject,
		})
		for i := range n {
			mustPublish(t, pjs, subject, body(i))
		}
		return c
	}

	t.Run("Ack", func(t *testing.T) {
		c := newConsumer(t, "ack", 1)
		m := fetchOne(t, c, 10*time.Second)
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		seq := meta(t, m).Sequence.Stream
		eventuallyState(t, c, state{Delivered: [2]uint64{1, seq}, AckFloor: [2]uint64{1, seq}})
		// Acked: not redelivered, even after twice the ack wait.
		fetchNone(t, c, 2*ackWait)
	})

	t.Run("DoubleAck", func(t *testing.T) {
		c := newConsumer(t, "double", 1)
		m := fetchOne(t, c, 10*time.Second)
		mustDoubleAck(t, m)
		// The reply comes once the ack is applied: no polling needed.
		seq := meta(t, m).Sequence.Stream
		assertState(t, c, state{Delivered: [2]uint64{1, seq}, AckFloor: [2]uint64{1, seq}})
		// nats.go refuses a second ack of the same message client-side.
		if err := m.DoubleAck(ctxT(t, 5*time.Second)); !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			t.Fatalf("second double ack: %v, want ErrMsgAlreadyAckd", err)
		}
		// The server still confirms a repeated ack of an acked message
		// (a client retrying an ack whose reply was lost relies on it).
		reply, err := nc.Request(m.Reply(), []byte("+ACK"), scaled(5*time.Second))
		if err != nil {
			t.Fatalf("repeated +ACK with a reply: %v", err)
		}
		if len(reply.Data) != 0 || reply.Header.Get("Status") != "" {
			t.Fatalf("repeated +ACK reply: %q %v, want an empty message", reply.Data, reply.Header)
		}
		assertState(t, c, state{Delivered: [2]uint64{1, seq}, AckFloor: [2]uint64{1, seq}})
	})

	t.Run("Nak", func(t *testing.T) {
		c := newConsumer(t, "nak", 1)
		m := fetchOne(t, c, 10*time.Second)
		first := meta(t, m)
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
		again := fetchOne(t, c, 10*time.Second)
		md := meta(t, again)
		if md.Sequence.Stream != first.Sequence.Stream || md.NumDelivered != 2 || md.Sequence.Consumer != 2 || md.NumPending != 0 {
			t.Fatalf("after nak got stream seq %d delivered %d consumer seq %d pending %d, want %d, 2, 2, 0",
				md.Sequence.Stream, md.NumDelivered, md.Sequence.Consumer, md.NumPending, first.Sequence.Stream)
		}
		assertState(t, c, state{Delivered: [2]uint64{2, first.Sequence.Stream}, AckPending: 1, Redelivered: 1})

		// A nak'd message goes out again before newer ones. (A plain Nak
		// is fire-and-forget, and nats-server may then see the next pull
		// request first; -NAK with a reply is confirmed once processed.)
		newer := mustPublish(t, pjs, "acks.nak", body(1))
		if _, err := nc.Request(again.Reply(), []byte("-NAK"), scaled(5*time.Second)); err != nil {
			t.Fatalf("-NAK with a reply: %v", err)
		}
		got := fetch(t, c, 2, jetstream.FetchMaxWait(scaled(10*time.Second)))
		if seqs := streamSeqs(t, got); len(seqs) != 2 || seqs[0] != first.Sequence.Stream || seqs[1] != newer {
			t.Fatalf("after the second nak got stream seqs %v, want [%d %d]", seqs, first.Sequence.Stream, newer)
		}
		if md := meta(t, got[0]); md.NumDelivered != 3 || md.Sequence.Consumer != 3 {
			t.Fatalf("third delivery: delivered %d consumer seq %d", md.NumDelivered, md.Sequence.Consumer)
		}
		if md := meta(t, got[1]); md.NumDelivered != 1 || md.Sequence.Consumer != 4 {
			t.Fatalf("newer message: delivered %d consumer seq %d", md.NumDelivered, md.Sequence.Consumer)
		}
		mustDoubleAck(t, got[0])
		mustDoubleAck(t, got[1])
		assertState(t, c, state{Delivered: [2]uint64{4, newer}, AckFloor: [2]uint64{4, newer}})
	})

	t.Run("NakWithDelay", func(t *testing.T) {
		c := newConsumer(t, "nakdelay", 1)
		m := fetchOne(t, c, 10*time.Second)
		delay := scaled(1500 * time.Millisecond)
		nakAt := time.Now()
		if err := m.NakWithDelay(delay); err != nil {
			t.Fatal(err)
		}
		// A pull request covering the first half of the delay gets nothing.
		fetchNone(t, c, 750*time.Millisecond)
		again := fetchOne(t, c, 10*time.Second)
		if since := time.Since(nakAt); since < delay {
			t.Fatalf("redelivered %v after a nak with delay %v", since, delay)
		}
		if md := meta(t, again); md.NumDelivered != 2 || md.Sequence.Consumer != 2 {
			t.Fatalf("redelivery: delivered %d consumer seq %d, want 2 and 2", md.NumDelivered, md.Sequence.Consumer)
		}
		mustDoubleAck(t, again)
	})

	t.Run("InProgress", func(t *testing.T) {
		c := newConsumer(t, "wpi", 1)
		m := fetchOne(t, c, 10*time.Second)
		seq := meta(t, m).Sequence.Stream
		// While the message is worked on for 1.5 x ack_wait with +WPI every
		// ack_wait/2, a pull request is outstanding: a redelivery would
		// reach it.
		var wg sync.WaitGroup
		var redelivered []jetstream.Msg
		wg.Go(func() {
			b, err := c.Fetch(1, jetstream.FetchMaxWait(2*w))
			if err != nil {
				t.Errorf("fetch: %v", err)
				return
			}
			for r := range b.Messages() {
				redelivered = append(redelivered, r)
			}
		})
		tick := time.NewTicker(w / 2)
		deadline := time.After(w + w/2)
	working:
		for {
			select {
			case <-tick.C:
				if err := m.InProgress(); err != nil {
					t.Fatalf("in progress: %v", err)
				}
			case <-deadline:
				break working
			}
		}
		tick.Stop()
		mustDoubleAck(t, m)
		wg.Wait()
		if len(redelivered) != 0 {
			t.Fatalf("message redelivered while in progress (delivered %d times)", meta(t, redelivered[0]).NumDelivered)
		}
		assertState(t, c, state{Delivered: [2]uint64{1, seq}, AckFloor: [2]uint64{1, seq}})
	})

	t.Run("Term", func(t *testing.T) {
		c := newConsumer(t, "term", 1)
		m := fetchOne(t, c, 10*time.Second)
		seq := meta(t, m).Sequence.Stream
		if err := m.Term(); err != nil {
			t.Fatal(err)
		}
		// Terminated: never redelivered, and no longer pending.
		fetchNone(t, c, 2*ackWait)
		assertState(t, c, state{Delivered: [2]uint64{1, seq}, AckFloor: [2]uint64{1, seq}})
	})

	t.Run("ReplyForEveryKind", func(t *testing.T) {
		// nats-server answers -NAK, +WPI and +TERM too when they carry a
		// reply subject.
		c := newConsumer(t, "replies", 1)
		m := fetchOne(t, c, 10*time.Second)
		for _, kind := range []string{"+WPI", "-NAK", "+TERM"} {
			if kind == "+TERM" {
				m = fetchOne(t, c, 10*time.Second) // the nak'd message again
			}
			if _, err := nc.Request(m.Reply(), []byte(kind), scaled(5*time.Second)); err != nil {
				t.Fatalf("%s with a reply: %v", kind, err)
			}
		}
		fetchNone(t, c, 2*ackWait)
	})

	t.Run("NextAfterSettled", func(t *testing.T) {
		// +NXT acks and asks for more with one publish; the request part
		// stands even when the message was acked already.
		c := newConsumer(t, "next", 2)
		m := fetchOne(t, c, 10*time.Second)
		if _, err := nc.Request(m.Reply(), []byte("+ACK"), scaled(5*time.Second)); err != nil {
			t.Fatalf("double ack: %v", err)
		}
		next, err := nc.Request(m.Reply(), []byte(`+NXT {"batch":1}`), scaled(5*time.Second))
		if err != nil {
			t.Fatalf("+NXT after the ack: %v", err)
		}
		if string(next.Data) != string(body(1)) {
			t.Fatalf("+NXT got %q (headers %v), want %q", next.Data, next.Header, body(1))
		}
	})

	t.Run("AckAllPolicy", func(t *testing.T) {
		subject := "acks.all"
		c := mustCreateConsumer(t, js, "ACKS", jetstream.ConsumerConfig{
			Durable: "all", AckPolicy: jetstream.AckAllPolicy, AckWait: w, FilterSubject: subject,
		})
		var seqs []uint64
		for i := range 4 {
			seqs = append(seqs, mustPublish(t, pjs, subject, body(i)))
		}
		got := fetch(t, c, 4, jetstream.FetchMaxWait(scaled(10*time.Second)))
		if len(got) != 4 {
			t.Fatalf("fetched %d", len(got))
		}
		// Acking the third acks the first three.
		mustDoubleAck(t, got[2])
		assertState(t, c, state{Delivered: [2]uint64{4, seqs[3]}, AckFloor: [2]uint64{3, seqs[2]}, AckPending: 1})
		mustDoubleAck(t, got[3])
		assertState(t, c, state{Delivered: [2]uint64{4, seqs[3]}, AckFloor: [2]uint64{4, seqs[3]}})
		fetchNone(t, c, 2*ackWait)
	})
}

// TestConsumers_AckNone checks that ack_policy none leaves nothing pending
// but still sends a well-formed ack reply subject (nats.go needs it for the
// metadata).
func TestConsumers_AckNone(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "NOACK", Subjects: []string{"noack.>"}, Storage: jetstream.MemoryStorage})
	for i := range 3 {
		mustPublish(t, pjs, fmt.Sprintf("noack.%d", i), body(i))
	}
	// Created after the publishes: nats-server's pending token is exact
	// only then (for messages stored after creation it may lag).
	c := mustCreateConsumer(t, js, "NOACK", jetstream.ConsumerConfig{Durable: "N", AckPolicy: jetstream.AckNonePolicy})
	got := fetch(t, c, 3, jetstream.FetchMaxWait(scaled(10*time.Second)))
	if len(got) != 3 {
		t.Fatalf("fetched %d", len(got))
	}
	for i, m := range got {
		if md := meta(t, m); md.Sequence.Stream != uint64(i+1) || md.Sequence.Consumer != uint64(i+1) || md.NumPending != uint64(2-i) {
			t.Fatalf("message %d metadata %+v", i, md)
		}
	}
	assertState(t, c, state{Delivered: [2]uint64{3, 3}, AckFloor: [2]uint64{3, 3}})
	if info := mustInfo(t, c); info.Config.AckPolicy != jetstream.AckNonePolicy {
		t.Fatalf("ack policy %v", info.Config.AckPolicy)
	}
}
