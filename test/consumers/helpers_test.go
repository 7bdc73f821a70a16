package consumers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/internal/testutil"
)

// ctxT returns a context with a scaled timeout, cancelled at cleanup.
func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(d))
	t.Cleanup(cancel)
	return ctx
}

// scaled is testutil.Scale, short enough to keep call sites readable.
func scaled(d time.Duration) time.Duration { return testutil.Scale(d) }

func mustCreateStream(t *testing.T, js jetstream.JetStream, cfg jetstream.StreamConfig) jetstream.Stream {
	t.Helper()
	s, err := js.CreateStream(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatalf("create stream %s: %v", cfg.Name, err)
	}
	return s
}

func mustCreateConsumer(t *testing.T, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) jetstream.Consumer {
	t.Helper()
	c, err := js.CreateConsumer(ctxT(t, 10*time.Second), stream, cfg)
	if err != nil {
		t.Fatalf("create consumer %s on %s: %v", cfg.Durable+cfg.Name, stream, err)
	}
	return c
}

func body(i int) []byte { return fmt.Appendf(nil, "msg-%06d", i) }

// mustPublish publishes one message and returns its stream sequence.
func mustPublish(t *testing.T, js jetstream.JetStream, subject string, data []byte, opts ...jetstream.PublishOpt) uint64 {
	t.Helper()
	ack, err := js.Publish(ctxT(t, 10*time.Second), subject, data, opts...)
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return ack.Sequence
}

// meta returns a delivered message's metadata (from its ack reply subject).
func meta(t *testing.T, m jetstream.Msg) *jetstream.MsgMetadata {
	t.Helper()
	md, err := m.Metadata()
	if err != nil {
		t.Fatalf("metadata of %q (reply %q): %v", m.Subject(), m.Reply(), err)
	}
	return md
}

// fetch runs one Fetch and returns every message of the batch; the batch
// must end without error (408 and 404 end it quietly).
func fetch(t *testing.T, c jetstream.Consumer, batch int, opts ...jetstream.FetchOpt) []jetstream.Msg {
	t.Helper()
	b, err := c.Fetch(batch, opts...)
	if err != nil {
		t.Fatalf("fetch %d: %v", batch, err)
	}
	return drain(t, b)
}

// fetchNoWait runs one FetchNoWait and returns every message of the batch.
func fetchNoWait(t *testing.T, c jetstream.Consumer, batch int) []jetstream.Msg {
	t.Helper()
	b, err := c.FetchNoWait(batch)
	if err != nil {
		t.Fatalf("fetch no wait %d: %v", batch, err)
	}
	return drain(t, b)
}

func drain(t *testing.T, b jetstream.MessageBatch) []jetstream.Msg {
	t.Helper()
	var out []jetstream.Msg
	for m := range b.Messages() {
		out = append(out, m)
	}
	if err := b.Error(); err != nil {
		t.Fatalf("batch ended with error after %d messages: %v", len(out), err)
	}
	return out
}

// fetchOne fetches exactly one message, waiting up to wait for it.
func fetchOne(t *testing.T, c jetstream.Consumer, wait time.Duration) jetstream.Msg {
	t.Helper()
	got := fetch(t, c, 1, jetstream.FetchMaxWait(scaled(wait)))
	if len(got) != 1 {
		t.Fatalf("fetched %d messages within %v, want 1", len(got), scaled(wait))
	}
	return got[0]
}

// fetchNone asserts that nothing is delivered within wait. A pull request
// stays outstanding for the whole wait, so a redelivery due in that time
// would be delivered to it.
func fetchNone(t *testing.T, c jetstream.Consumer, wait time.Duration) {
	t.Helper()
	if got := fetch(t, c, 1, jetstream.FetchMaxWait(scaled(wait))); len(got) != 0 {
		md := meta(t, got[0])
		t.Fatalf("got stream seq %d (delivered %d times) within %v, want nothing", md.Sequence.Stream, md.NumDelivered, scaled(wait))
	}
}

func mustInfo(t *testing.T, c jetstream.Consumer) *jetstream.ConsumerInfo {
	t.Helper()
	info, err := c.Info(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return info
}

// state is the part of ConsumerInfo the tests compare exactly.
type state struct {
	Delivered, AckFloor [2]uint64 // consumer seq, stream seq
	AckPending          int
	Redelivered         int
	Pending             uint64
}

func (s state) String() string {
	return fmt.Sprintf("delivered{c:%d s:%d} ack_floor{c:%d s:%d} num_ack_pending:%d num_redelivered:%d num_pending:%d",
		s.Delivered[0], s.Delivered[1], s.AckFloor[0], s.AckFloor[1], s.AckPending, s.Redelivered, s.Pending)
}

func stateOf(info *jetstream.ConsumerInfo) state {
	return state{
		Delivered:   [2]uint64{info.Delivered.Consumer, info.Delivered.Stream},
		AckFloor:    [2]uint64{info.AckFloor.Consumer, info.AckFloor.Stream},
		AckPending:  info.NumAckPending,
		Redelivered: info.NumRedelivered,
		Pending:     info.NumPending,
	}
}

// assertState compares the consumer's counters now.
func assertState(t *testing.T, c jetstream.Consumer, want state) {
	t.Helper()
	if got := stateOf(mustInfo(t, c)); got != want {
		t.Fatalf("consumer state\n got %v\nwant %v", got, want)
	}
}

// eventuallyState waits for the consumer's counters to reach want (after
// plain acks, which the server applies asynchronously).
func eventuallyState(t *testing.T, c jetstream.Consumer, want state) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		info, err := c.Info(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if got := stateOf(info); got != want {
			return fmt.Errorf("consumer state\n got %v\nwant %v", got, want)
		}
		return nil
	})
}

// mustDoubleAck acks and waits for the server's confirmation.
func mustDoubleAck(t *testing.T, m jetstream.Msg) {
	t.Helper()
	if err := m.DoubleAck(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("double ack %s: %v", m.Reply(), err)
	}
}

// streamSeqs returns the stream sequences of msgs.
func streamSeqs(t *testing.T, msgs []jetstream.Msg) []uint64 {
	t.Helper()
	out := make([]uint64, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, meta(t, m).Sequence.Stream)
	}
	return out
}

// apiCode returns the err_code of a JetStream API error, or 0.
func apiCode(err error) jetstream.ErrorCode {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode
	}
	return 0
}

// logConsumeErrors returns a Consume error handler that logs errors
// (missed heartbeats, status messages) for diagnosis until the test ends:
// nats.go may report one after Stop, and logging after a test completed
// panics.
func logConsumeErrors(t *testing.T, who string) jetstream.ConsumeErrHandler {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() {
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return func(_ jetstream.ConsumeContext, err error) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("%s: consume error: %v", who, err)
		}
	}
}
