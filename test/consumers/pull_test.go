package consumers

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/internal/testutil"
)

// pullN is the stream size for the pull method tests. Nine keeps every
// sequence and pending count one digit long, so every delivered message has
// the same size (FetchBytes depends on it).
const pullN = 9

// TestConsumers_PullMethods reads the same nine messages through every pull
// method of nats.go, each on its own durable consumer, and checks content,
// order and the metadata carried in the ack reply subject.
func TestConsumers_PullMethods(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	ctx := ctxT(t, 60*time.Second)
	s := mustCreateStream(t, js, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.MemoryStorage})
	stored := make([]*jetstream.RawStreamMsg, 0, pullN)
	for i := 1; i <= pullN; i++ {
		seq := mustPublish(t, pjs, fmt.Sprintf("orders.%d", i), body(i))
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		stored = append(stored, m)
	}

	methods := []struct {
		name string
		read func(t *testing.T, c jetstream.Consumer) []jetstream.Msg
	}{
		{"Fetch", readFetch},
		{"FetchNoWait", readFetchNoWait},
		{"FetchBytes", readFetchBytes},
		{"Next", readNext},
		{"Consume", readConsume},
		{"Messages", readMessages},
	}
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			name := "C_" + m.name
			c := mustCreateConsumer(t, js, "ORDERS", jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy})
			assertState(t, c, state{Pending: pullN})
			got := m.read(t, c)
			assertFirstDeliveries(t, got, stored, name)
			assertState(t, c, state{Delivered: [2]uint64{pullN, pullN}, AckPending: pullN})
			for _, msg := range got {
				if err := msg.Ack(); err != nil {
					t.Fatalf("ack: %v", err)
				}
			}
			eventuallyState(t, c, state{Delivered: [2]uint64{pullN, pullN}, AckFloor: [2]uint64{pullN, pullN}})
		})
	}
}

// assertFirstDeliveries checks that got is the whole stream, in order,
// each message delivered for the first time to consumer name.
func assertFirstDeliveries(t *testing.T, got []jetstream.Msg, stored []*jetstream.RawStreamMsg, name string) {
	t.Helper()
	if len(got) != len(stored) {
		t.Fatalf("got %d messages, want %d", len(got), len(stored))
	}
	for i, m := range got {
		want := stored[i]
		md := meta(t, m)
		if m.Subject() != want.Subject || !bytes.Equal(m.Data(), want.Data) {
			t.Errorf("message %d: %s %q, want %s %q", i, m.Subject(), m.Data(), want.Subject, want.Data)
		}
		if md.Sequence.Stream != want.Sequence || md.Sequence.Consumer != uint64(i+1) {
			t.Errorf("message %d: stream seq %d consumer seq %d, want %d and %d", i, md.Sequence.Stream, md.Sequence.Consumer, want.Sequence, i+1)
		}
		if md.NumDelivered != 1 || md.NumPending != uint64(len(stored)-i-1) {
			t.Errorf("message %d: delivered %d pending %d, want 1 and %d", i, md.NumDelivered, md.NumPending, len(stored)-i-1)
		}
		if md.Stream != "ORDERS" || md.Consumer != name {
			t.Errorf("message %d: stream %q consumer %q, want ORDERS and %q", i, md.Stream, md.Consumer, name)
		}
		if !md.Timestamp.Equal(want.Time) {
			t.Errorf("message %d: timestamp %v, want the stored time %v", i, md.Timestamp, want.Time)
		}
	}
}

// readFetch reads in batches of three; each Fetch ends as soon as its
// batch is full.
func readFetch(t *testing.T, c jetstream.Consumer) []jetstream.Msg {
	var out []jetstream.Msg
	for range pullN / 3 {
		got := fetch(t, c, 3, jetstream.FetchMaxWait(scaled(10*time.Second)))
		if len(got) != 3 {
			t.Fatalf("fetch 3 got %d", len(got))
		}
		out = append(out, got...)
	}
	return out
}

// readFetchNoWait reads in batches of four: 4, 4, 1, then an empty batch,
// all without waiting.
func readFetchNoWait(t *testing.T, c jetstream.Consumer) []jetstream.Msg {
	var out []jetstream.Msg
	for _, want := range []int{4, 4, 1, 0} {
		start := time.Now()
		got := fetchNoWait(t, c, 4)
		if len(got) != want {
			t.Fatalf("fetch no wait 4 got %d, want %d", len(got), want)
		}
		// No wait means no wait: far below the 30 s default expiry.
		if d := time.Since(start); d > scaled(5*time.Second) {
			t.Fatalf("fetch no wait took %v", d)
		}
		out = append(out, got...)
	}
	return out
}

// readFetchBytes reads one message with Next to learn the size the server
// counts (subject + ack reply + headers + payload), then fetches with a
// budget of two messages: every batch holds exactly two.
func readFetchBytes(t *testing.T, c jetstream.Consumer) []jetstream.Msg {
	first, err := c.Next(jetstream.FetchMaxWait(scaled(10 * time.Second)))
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	size := len(first.Subject()) + len(first.Reply()) + len(first.Data())
	// Room for two messages but never three. The slack covers a leader
	// change under load: the new leader moves the consumer sequence 65,536
	// on (broker/DESIGN.md), which lengthens every later ack reply.
	budget := 2*size + 12
	out := []jetstream.Msg{first}
	for range (pullN - 1) / 2 {
		b, err := c.FetchBytes(budget, jetstream.FetchMaxWait(scaled(10*time.Second)))
		if err != nil {
			t.Fatalf("fetch bytes: %v", err)
		}
		got := drain(t, b)
		if len(got) != 2 {
			t.Fatalf("fetch bytes %d got %d messages, want 2", budget, len(got))
		}
		out = append(out, got...)
	}
	return out
}

func readNext(t *testing.T, c jetstream.Consumer) []jetstream.Msg {
	var out []jetstream.Msg
	for range pullN {
		m, err := c.Next(jetstream.FetchMaxWait(scaled(10 * time.Second)))
		if err != nil {
			t.Fatalf("next after %d: %v", len(out), err)
		}
		out = append(out, m)
	}
	return out
}

// readConsume consumes with a buffer of four messages, so the client has to
// send several pull requests on the same inbox.
func readConsume(t *testing.T, c jetstream.Consumer) []jetstream.Msg {
	ch := make(chan jetstream.Msg, pullN)
	cc, err := c.Consume(func(m jetstream.Msg) { ch <- m }, jetstream.PullMaxMessages(4),
		logConsumeErrors(t, "consume"))
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	defer cc.Stop()
	var out []jetstream.Msg
	timeout := time.After(scaled(20 * time.Second))
	for len(out) < pullN {
		select {
		case m := <-ch:
			out = append(out, m)
		case <-timeout:
			t.Fatalf("consume got %d of %d", len(out), pullN)
		}
	}
	return out
}

func readMessages(t *testing.T, c jetstream.Consumer) []jetstream.Msg {
	it, err := c.Messages(jetstream.PullMaxMessages(4))
	if err != nil {
		t.Fatalf("messages: %v", err)
	}
	defer it.Stop()
	var out []jetstream.Msg
	done := make(chan error, 1)
	go func() {
		for len(out) < pullN {
			m, err := it.Next()
			if err != nil {
				done <- fmt.Errorf("next after %d: %w", len(out), err)
				return
			}
			out = append(out, m)
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(scaled(20 * time.Second)):
		it.Stop()
		<-done
		t.Fatalf("messages got %d of %d", len(out), pullN)
	}
	return out
}

// TestConsumers_PullRequestWaitsAndExpires checks the life of a pull
// request: it waits (num_waiting) for messages published later, and on
// expiry the client gets what there was without an error.
func TestConsumers_PullRequestWaitsAndExpires(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "WAIT", Subjects: []string{"wait.>"}, Storage: jetstream.MemoryStorage})
	c := mustCreateConsumer(t, js, "WAIT", jetstream.ConsumerConfig{Durable: "W", AckPolicy: jetstream.AckExplicitPolicy})

	// An empty consumer: a short Fetch expires with nothing and no error.
	start := time.Now()
	if got := fetch(t, c, 5, jetstream.FetchMaxWait(scaled(time.Second))); len(got) != 0 {
		t.Fatalf("fetch on empty consumer got %d", len(got))
	}
	if d := time.Since(start); d < scaled(time.Second)-50*time.Millisecond {
		t.Fatalf("fetch with max wait 1s returned after %v", d)
	}

	// A request waiting on an empty consumer is served by a later publish.
	b, err := c.Fetch(2, jetstream.FetchMaxWait(scaled(20*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := mustInfo(t, c).NumWaiting; n != 1 {
			return fmt.Errorf("num_waiting %d, want 1", n)
		}
		return nil
	})
	mustPublish(t, pjs, "wait.a", []byte("a"))
	mustPublish(t, pjs, "wait.b", []byte("b"))
	got := drain(t, b)
	if len(got) != 2 || string(got[0].Data()) != "a" || string(got[1].Data()) != "b" {
		t.Fatalf("waiting request got %d messages", len(got))
	}
	if n := mustInfo(t, c).NumWaiting; n != 0 {
		t.Fatalf("num_waiting %d after the request was filled", n)
	}

	// A partly filled request returns what there was at expiry.
	mustPublish(t, pjs, "wait.c", []byte("c"))
	got = fetch(t, c, 3, jetstream.FetchMaxWait(scaled(time.Second)))
	if len(got) != 1 || string(got[0].Data()) != "c" {
		t.Fatalf("partial fetch got %d messages", len(got))
	}
}
