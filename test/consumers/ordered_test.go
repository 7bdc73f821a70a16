package consumers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// publishAsyncN publishes n messages with PublishAsync in windows of 1,000
// outstanding (as `nats bench js pub async` does) and waits for every ack.
// Each carries a Nats-Msg-Id, so a window whose acks do not all come (a
// batch whose outcome was unknown when leadership moved under load: the
// broker does not answer those) is completed by publishing the missing
// ones again, as a client would; de-duplication keeps each once.
func publishAsyncN(t *testing.T, js jetstream.JetStream, n int, subject func(i int) string) {
	t.Helper()
	publishAsyncData(t, js, n, subject, body)
}

// publishAsyncData is publishAsyncN with the payload of message i given by
// data.
func publishAsyncData(t *testing.T, js jetstream.JetStream, n int, subject func(i int) string, data func(i int) []byte) {
	t.Helper()
	const window = 1000
	type pending struct {
		i int
		f jetstream.PubAckFuture
	}
	futures := make([]pending, 0, window)
	id := func(i int) string { return fmt.Sprintf("async-%d", i) }
	for i := range n {
		f, err := js.PublishAsync(subject(i), data(i), jetstream.WithMsgID(id(i)))
		if err != nil {
			t.Fatalf("publish async %d: %v", i, err)
		}
		futures = append(futures, pending{i, f})
		if len(futures) < window && i < n-1 {
			continue
		}
		// Wait for this window's own futures, not PublishAsyncComplete: the
		// futures of batches lost in a leader change stay pending in the
		// client for ever, so after one such loss PublishAsyncComplete
		// would never fire again and every later window would wait out
		// its whole timeout.
		expired := time.NewTimer(scaled(20 * time.Second))
		timedOut := false
		for _, p := range futures {
			if !timedOut {
				select {
				case <-p.f.Ok():
					continue
				case err := <-p.f.Err():
					t.Logf("publish %d: %v; publishing it again", p.i, err)
				case <-expired.C:
					timedOut = true
					t.Logf("window ending at %d: acks outstanding after %v; publishing those again", i, scaled(20*time.Second))
				}
			}
			if timedOut {
				select {
				case <-p.f.Ok():
					continue
				case err := <-p.f.Err():
					t.Logf("publish %d: %v; publishing it again", p.i, err)
				default:
				}
			}
			// One attempt at a time: an attempt lost in a leader change is
			// never answered, and must not use up the whole minute.
			ctx, cancel := context.WithTimeout(context.Background(), scaled(60*time.Second))
			err := publishUntilOK(ctx, js, subject(p.i), data(p.i), id(p.i))
			cancel()
			if err != nil {
				t.Fatalf("publish %d never acknowledged: %v", p.i, err)
			}
		}
		expired.Stop()
		futures = futures[:0]
	}
}

// TestConsumers_Ordered_100k reads 100,000 messages through an ordered
// consumer: every stream sequence exactly once, strictly in order, with
// gapless consumer sequences (any gap would make nats.go reset the
// consumer, which shows up as a consumer name change).
func TestConsumers_Ordered_100k(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	const n = 100_000
	s := mustCreateStream(t, js, jetstream.StreamConfig{Name: "BIG", Subjects: []string{"big.>"}, Storage: jetstream.MemoryStorage})
	publishAsyncN(t, pjs, n, func(i int) string { return fmt.Sprintf("big.%d", i%16) })
	if info, err := s.Info(ctxT(t, 10*time.Second)); err != nil || info.State.Msgs != n {
		t.Fatalf("stream holds %+v (%v), want %d messages", info, err, n)
	}

	c, err := js.OrderedConsumer(ctxT(t, 10*time.Second), "BIG", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	ch := consumeOrdered(t, c, 1024, logConsumeErrors(t, "ordered"))

	timeout := time.After(scaled(120 * time.Second))
	var name string
	var nextConsumerSeq uint64
	resets := -1 // the first consumer is not a reset
	for want := uint64(1); want <= n; want++ {
		var got orderedMsg
		select {
		case got = <-ch:
		case <-timeout:
			t.Fatalf("got stream seqs 1..%d of %d", want-1, n)
		}
		if got.stream != want {
			t.Fatalf("got stream seq %d, want %d", got.stream, want)
		}
		i := int(want - 1)
		if got.subject != fmt.Sprintf("big.%d", i%16) || got.data != string(body(i)) {
			t.Fatalf("stream seq %d: %s %q", want, got.subject, got.data)
		}
		// nats.go recreates the consumer (a new name, consumer seqs from 1
		// again) on a gap or a missed heartbeat; within one consumer the
		// consumer sequence must be gapless.
		if got.name != name {
			name, nextConsumerSeq = got.name, 1
			resets++
		}
		if got.consumer != nextConsumerSeq {
			t.Fatalf("stream seq %d came as consumer seq %d of %s, want %d", want, got.consumer, name, nextConsumerSeq)
		}
		nextConsumerSeq++
	}
	t.Logf("%d messages in order; ordered consumer recreated %d times", n, resets)
}

// orderedMsg is what an ordered consumer's handler was given.
type orderedMsg struct {
	stream, consumer uint64
	name             string // the consumer's: nats.go recreates it under a new name
	subject          string
	data             string
}

// consumeOrdered runs Consume on an ordered consumer and hands each message
// over on the returned channel, holding up to buf of them (with 0 the
// handler waits for the test). It stops with the test.
func consumeOrdered(t *testing.T, c jetstream.Consumer, buf int, opts ...jetstream.PullConsumeOpt) <-chan orderedMsg {
	t.Helper()
	ch := make(chan orderedMsg, buf)
	done := make(chan struct{})
	cc, err := c.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			t.Errorf("metadata: %v", err)
			return
		}
		select {
		case ch <- orderedMsg{md.Sequence.Stream, md.Sequence.Consumer, md.Consumer, m.Subject(), string(m.Data())}:
		case <-done:
		}
	}, opts...)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	t.Cleanup(func() {
		close(done)
		cc.Stop()
	})
	return ch
}
