package consumers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/internal/testutil"
)

// failoverConsumeOpts makes Consume notice a dead pull request within a
// couple of seconds (a missed 1 s heartbeat) instead of the default 30 s,
// and re-pull on its own.
func failoverConsumeOpts(t *testing.T, who string) []jetstream.PullConsumeOpt {
	return []jetstream.PullConsumeOpt{
		jetstream.PullExpiry(scaled(4 * time.Second)),
		jetstream.PullHeartbeat(scaled(time.Second)),
		// Errors are expected around the kill.
		logConsumeErrors(t, who),
	}
}

// publishUntilOK publishes with a message id, retrying on any error (the
// leader may be dead, the client reconnecting, the ack lost) until the
// server confirms it or ctx ends. The id makes retries safe: the stream
// keeps one copy.
func publishUntilOK(ctx context.Context, js jetstream.JetStream, subject string, data []byte, id string) error {
	for {
		actx, cancel := context.WithTimeout(ctx, scaled(2*time.Second))
		_, err := js.Publish(actx, subject, data, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publish %s: gave up: %w", id, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond): // retry back-off, not synchronisation
		}
	}
}

// ackTracker follows a consuming run: how often each message was delivered,
// which DoubleAcks succeeded, and which of those completed before the kill.
type ackTracker struct {
	mu              sync.Mutex
	n               int
	deliveries      map[string]int
	acks            map[string]int // successful DoubleAcks per message
	ackedBeforeKill map[string]bool
	violations      []string
	redeliveries    int
	killed          atomic.Bool
	complete        chan struct{} // closed once every message was acked
	stopped         bool
	inflight        sync.WaitGroup
	sem             chan struct{}
}

func newAckTracker(n int) *ackTracker {
	return &ackTracker{
		n:               n,
		deliveries:      map[string]int{},
		acks:            map[string]int{},
		ackedBeforeKill: map[string]bool{},
		complete:        make(chan struct{}),
		sem:             make(chan struct{}, 64),
	}
}

// handle records a delivery and acks it in the background (so a slow ack
// during the failover does not stall the consumer), retrying the DoubleAck
// for up to retryFor after receipt. A message whose ack never succeeds is
// redelivered after ack_wait and counted then.
func (a *ackTracker) handle(m jetstream.Msg, retryFor time.Duration) {
	received := time.Now()
	id := string(m.Data())
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	a.deliveries[id]++
	if a.deliveries[id] > 1 {
		a.redeliveries++
	}
	if a.killed.Load() && a.ackedBeforeKill[id] {
		a.violations = append(a.violations, fmt.Sprintf("%s acked before the kill, delivered again after it (delivery %d)", id, a.deliveries[id]))
	}
	a.inflight.Add(1)
	a.mu.Unlock()
	a.sem <- struct{}{}
	go func() {
		defer a.inflight.Done()
		defer func() { <-a.sem }()
		for time.Since(received) < retryFor {
			ctx, cancel := context.WithTimeout(context.Background(), scaled(time.Second))
			err := m.DoubleAck(ctx)
			cancel()
			if err == nil {
				a.acked(id)
				return
			}
			if errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
				return
			}
			time.Sleep(20 * time.Millisecond) // retry back-off, not synchronisation
		}
	}()
}

func (a *ackTracker) acked(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acks[id]++
	if a.acks[id] == 1 {
		if !a.killed.Load() {
			a.ackedBeforeKill[id] = true
		}
		if len(a.acks) == a.n {
			close(a.complete)
		}
	}
}

// stop makes later deliveries no-ops and waits for acks in flight.
func (a *ackTracker) stop() {
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.inflight.Wait()
}

func (a *ackTracker) progress() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("%d of %d delivered, %d acked, %d redeliveries", len(a.deliveries), a.n, len(a.acks), a.redeliveries)
}

// failover says where the clients of a failover scenario connect and how
// the failure is caused.
type failover struct {
	// consumers and producers are client URLs, one client each.
	consumers, producers []string
	// kill kills the Raft leader and says which node it was.
	kill func() string
}

// flotillaFailover puts consumers on the followers and producers on the
// leader and a follower, and kills the leader.
func flotillaFailover(t *testing.T, tg *target) failover {
	t.Helper()
	c := tg.requireFlotilla(t)
	leader := c.WaitLeader()
	fs := c.Followers()
	return failover{
		consumers: []string{fs[0].ClientURL, fs[1].ClientURL},
		producers: []string{leader.ClientURL, fs[1].ClientURL},
		kill: func() string {
			c.Kill(leader.ID)
			return leader.ID
		},
	}
}

// TestConsumers_Failover_ConsumeSurvivesLeaderKill: a consumer on a
// follower keeps one Consume() running while the Raft leader is killed
// halfway through 5,000 publishes. Every message is processed, and no
// message whose DoubleAck succeeded before the kill comes back after it.
func TestConsumers_Failover_ConsumeSurvivesLeaderKill(t *testing.T) {
	runConsumeAcrossKill(t, flotillaFailover(t, newTarget(t)))
}

// TestConsumers_ExactlyOnce_AcrossLeaderKill: two producers publish with
// Nats-Msg-Id, retrying on any error; two consumers on two followers share
// one durable consumer and DoubleAck everything. The leader is killed
// midway. Every published id must be processed (DoubleAck succeeded)
// exactly once.
func TestConsumers_ExactlyOnce_AcrossLeaderKill(t *testing.T) {
	runExactlyOnceAcrossKill(t, flotillaFailover(t, newTarget(t)))
}

// killMidway waits until half of n messages are published, then marks the
// tracker and runs the kill.
func killMidway(t *testing.T, f failover, tr *ackTracker, published *atomic.Int64, n int) time.Time {
	t.Helper()
	testutil.Eventually(t, 60*time.Second, func() error {
		if p := published.Load(); p < int64(n/2) {
			return fmt.Errorf("%d of %d published", p, n)
		}
		return nil
	})
	tr.killed.Store(true)
	at := time.Now()
	p := published.Load()
	t.Logf("killed leader %s after %d publishes (%s)", f.kill(), p, tr.progress())
	return at
}

func runConsumeAcrossKill(t *testing.T, f failover) {
	_, cjs := connect(t, f.consumers[0])
	_, pjs := connect(t, f.producers[1])
	ctx := ctxT(t, 120*time.Second)
	mustCreateStream(t, pjs, jetstream.StreamConfig{Name: "FAIL", Subjects: []string{"fail.>"}, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute})
	w := scaled(3 * time.Second)
	cons := mustCreateConsumer(t, cjs, "FAIL", jetstream.ConsumerConfig{Durable: "F", AckPolicy: jetstream.AckExplicitPolicy, AckWait: w})

	const n = 5000
	tr := newAckTracker(n)
	cc, err := cons.Consume(func(m jetstream.Msg) { tr.handle(m, w/2) }, failoverConsumeOpts(t, "consumer")...)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	defer tr.stop()
	defer cc.Stop()

	var published atomic.Int64
	pubDone := make(chan error, 1)
	go func() {
		for i := range n {
			id := strconv.Itoa(i)
			if err := publishUntilOK(ctx, pjs, "fail."+strconv.Itoa(i%8), []byte(id), id); err != nil {
				pubDone <- err
				return
			}
			published.Add(1)
		}
		pubDone <- nil
	}()
	killedAt := killMidway(t, f, tr, &published, n)
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	select {
	case <-tr.complete:
	case <-time.After(scaled(60 * time.Second)):
		t.Fatalf("not every message processed: %s", tr.progress())
	}
	t.Logf("all %d processed %v after the kill; %s", n, time.Since(killedAt).Round(time.Millisecond), tr.progress())

	tr.mu.Lock()
	for _, v := range tr.violations {
		t.Error(v)
	}
	tr.mu.Unlock()
	info, err := cjs.Stream(ctx, "FAIL")
	if err != nil {
		t.Fatal(err)
	}
	if msgs := info.CachedInfo().State.Msgs; msgs != n {
		t.Errorf("stream holds %d messages, want %d (publish retries must be de-duplicated)", msgs, n)
	}
}

func runExactlyOnceAcrossKill(t *testing.T, f failover) {
	ctx := ctxT(t, 120*time.Second)
	_, admin := connect(t, f.consumers[0])
	// The duplicate window covers the whole test.
	mustCreateStream(t, admin, jetstream.StreamConfig{Name: "ONCE", Subjects: []string{"once.>"}, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute})
	w := scaled(6 * time.Second)
	mustCreateConsumer(t, admin, "ONCE", jetstream.ConsumerConfig{Durable: "EO", AckPolicy: jetstream.AckExplicitPolicy, AckWait: w})

	const perProducer = 1000
	n := perProducer * len(f.producers)
	tr := newAckTracker(n)
	defer tr.stop()
	for i, url := range f.consumers {
		_, js := connect(t, url)
		cons, err := js.Consumer(ctx, "ONCE", "EO")
		if err != nil {
			t.Fatal(err)
		}
		// A DoubleAck is retried for at most half the ack wait, so a
		// message is never acked by one consumer while redelivered to the
		// other.
		cc, err := cons.Consume(func(m jetstream.Msg) { tr.handle(m, w/2) }, failoverConsumeOpts(t, fmt.Sprintf("consumer %d", i+1))...)
		if err != nil {
			t.Fatalf("consume %d: %v", i+1, err)
		}
		defer cc.Stop()
	}

	var published atomic.Int64
	pubDone := make(chan error, len(f.producers))
	for p, url := range f.producers {
		_, js := connect(t, url)
		go func() {
			for i := range perProducer {
				id := fmt.Sprintf("p%d-%05d", p+1, i)
				if err := publishUntilOK(ctx, js, fmt.Sprintf("once.p%d", p+1), []byte(id), id); err != nil {
					pubDone <- err
					return
				}
				published.Add(1)
			}
			pubDone <- nil
		}()
	}
	killMidway(t, f, tr, &published, n)
	for range f.producers {
		if err := <-pubDone; err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-tr.complete:
	case <-time.After(scaled(60 * time.Second)):
		t.Fatalf("not every message processed: %s", tr.progress())
	}
	// Wait until nothing is outstanding, so no redelivery can still come.
	cons, err := admin.Consumer(ctx, "ONCE", "EO")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumPending != 0 {
			return fmt.Errorf("num_ack_pending %d num_pending %d", info.NumAckPending, info.NumPending)
		}
		return nil
	})
	tr.stop()
	t.Logf("%s", tr.progress())

	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, v := range tr.violations {
		t.Error(v)
	}
	for p := range f.producers {
		for i := range perProducer {
			id := fmt.Sprintf("p%d-%05d", p+1, i)
			if got := tr.acks[id]; got != 1 {
				t.Errorf("%s processed %d times, want exactly once", id, got)
			}
		}
	}
	if len(tr.acks) != n {
		t.Errorf("processed %d distinct ids, want %d", len(tr.acks), n)
	}
	info, err := admin.Stream(ctx, "ONCE")
	if err != nil {
		t.Fatal(err)
	}
	if msgs := info.CachedInfo().State.Msgs; msgs != uint64(n) {
		t.Errorf("stream holds %d messages, want %d", msgs, n)
	}
}
