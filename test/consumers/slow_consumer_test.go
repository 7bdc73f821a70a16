package consumers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/internal/testutil"
)

// TestConsumers_SlowDoubleAcker_MakesProgress is a consumer slower than
// its ack_wait: it works through its buffered messages one at a time and
// double-acks each after processing it, so most messages are redelivered
// before it gets to them, and it sees several copies of each. It must
// still finish: the first ack of any delivery settles a message. On
// Flotilla each message's double ack is confirmed exactly once, and the
// acks of the other copies are refused at once (no responders) rather
// than left to time out, which would put the client ever further behind.
// (nats-server confirms every copy's ack; there only progress is checked.)
func TestConsumers_SlowDoubleAcker_MakesProgress(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "SLOW", Subjects: []string{"slow.>"}, Storage: jetstream.FileStorage})
	const n, maxAckPending = 24, 8
	wait := scaled(400 * time.Millisecond)
	work := wait / 3 // per copy: a full buffer takes longer than ack_wait
	c := mustCreateConsumer(t, js, "SLOW", jetstream.ConsumerConfig{
		Durable: "S", AckPolicy: jetstream.AckExplicitPolicy, AckWait: wait, MaxDeliver: -1, MaxAckPending: maxAckPending,
	})
	for i := range n {
		mustPublish(t, pjs, "slow.x", body(i))
	}

	var (
		mu        sync.Mutex
		confirmed = map[uint64]int{} // stream seq -> ok double acks
		copies    int
		refused   int
		timedOut  []string
	)
	queue := make(chan jetstream.Msg, 10_000)
	cc, err := c.Consume(func(m jetstream.Msg) { queue <- m },
		jetstream.PullMaxMessages(maxAckPending), jetstream.ConsumeErrHandler(logConsumeErrors(t, "slow")))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			var m jetstream.Msg
			select {
			case m = <-queue:
			case <-ctx.Done():
				return
			}
			select { // the client's work on the message (a pace, not synchronisation)
			case <-time.After(work):
			case <-ctx.Done():
				return
			}
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			actx, acancel := context.WithTimeout(ctx, 3*time.Second)
			err = m.DoubleAck(actx)
			acancel()
			mu.Lock()
			copies++
			switch {
			case err == nil:
				confirmed[md.Sequence.Stream]++
			case errors.Is(err, nats.ErrNoResponders):
				refused++
			case ctx.Err() == nil:
				timedOut = append(timedOut, fmt.Sprintf("seq %d delivery %d: %v", md.Sequence.Stream, md.NumDelivered, err))
			}
			mu.Unlock()
		}
	}()
	testutil.Eventually(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(confirmed) < n {
			return fmt.Errorf("the slow consumer is stuck: %d of %d messages confirmed after %d copies (%d refused, %d timed out)",
				len(confirmed), n, copies, refused, len(timedOut))
		}
		return nil
	})
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%s: %d messages, %d copies processed, %d acks refused, %d timed out", tg.name, n, copies, refused, len(timedOut))
	if copies == n {
		t.Fatalf("no message was redelivered: the consumer was not slower than ack_wait (work %v per message, ack_wait %v)", work, wait)
	}
	if tg.cluster == nil {
		return
	}
	for seq, k := range confirmed {
		if k != 1 {
			t.Errorf("seq %d: %d double acks confirmed, want exactly 1", seq, k)
		}
	}
	if len(timedOut) > 0 {
		t.Errorf("double acks left without an answer: %v", timedOut)
	}
	if info := mustInfo(t, c); info.NumAckPending != 0 || info.NumPending != 0 || info.AckFloor.Stream != n {
		t.Fatalf("after every message was confirmed: %v", stateOf(info))
	}
}
