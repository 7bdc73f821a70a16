package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WorkloadConfig sizes the workload.
type WorkloadConfig struct {
	Stream    string
	Producers int
	// Rate is each producer's pace in messages per second (each one still
	// publishes strictly one message after another).
	Rate float64
	// Durables are the names of the durable pull consumers (one client
	// each); an ordered consumer "o1" always runs as well.
	Durables []string
	// PublishTimeout bounds one publish attempt. Longer than the server's
	// wait for a leader during an election (--forward-hold-timeout, 5 s),
	// so that a publish held through an election gets its answer.
	PublishTimeout time.Duration
	// AckWait of the durable consumers: unacked messages come back after it.
	AckWait time.Duration
}

// DefaultWorkload is the suite's workload: three producers at 25 msg/s,
// two durable consumers and one ordered consumer.
func DefaultWorkload() WorkloadConfig {
	return WorkloadConfig{
		Stream: "CHAOS", Producers: 3, Rate: 25, Durables: []string{"d1", "d2"},
		PublishTimeout: 6 * time.Second, AckWait: 5 * time.Second,
	}
}

// Workload drives stock nats.go clients against the cluster and records
// every operation into the history. Client i connects to node i (mod N)
// first and may fail over to any other.
type Workload struct {
	cfg   WorkloadConfig
	b     Backend
	h     *History
	nodes map[string]string // client host:port -> node name

	stop chan struct{} // closed: producers finish their value and exit
	// closing ends when Close begins: consumer callbacks stop queueing
	// and the ack loops stop acking, so Close never waits for a backlog.
	closing   context.Context
	closeNow  context.CancelFunc
	finish    time.Duration // how long they may retry that value (set before stop is closed)
	stopOnce  sync.Once
	prodWG    sync.WaitGroup
	mu        sync.Mutex
	conns     []*nats.Conn
	consumes  []jetstream.ConsumeContext
	stuck     []string // producers that gave up on a value
	orderedAt atomic.Uint64
	// cbMu is read-held by every consumer callback in flight; Close
	// write-locks it to wait for them and set stopped, after which
	// callbacks record nothing.
	cbMu    sync.RWMutex
	stopped bool
	queues  []chan pendingAck // durable consumers' ack queues
	ackWG   sync.WaitGroup    // their ack loops
}

// NewWorkload prepares a workload against b.
func NewWorkload(cfg WorkloadConfig, b Backend, h *History) *Workload {
	w := &Workload{cfg: cfg, b: b, h: h, nodes: map[string]string{}, stop: make(chan struct{})}
	w.closing, w.closeNow = context.WithCancel(context.Background())
	for _, n := range b.Nodes() {
		if u, err := url.Parse(b.ClientURL(n)); err == nil {
			w.nodes[u.Host] = n
		}
	}
	return w
}

// connect opens a client that tries node index first, then the others in
// order, and reconnects forever. It ignores the servers INFO advertises:
// inside docker those names do not resolve from the host, and the list
// given already has every node. Pings every second detect a frozen node
// within a few seconds.
func (w *Workload) connect(name string, first int) (*nats.Conn, error) {
	nodes := w.b.Nodes()
	var urls []string
	for i := range nodes {
		urls = append(urls, w.b.ClientURL(nodes[(first+i)%len(nodes)]))
	}
	nc, err := nats.Connect(strings.Join(urls, ","),
		nats.Name("chaos-"+name), nats.DontRandomize(), nats.IgnoreDiscoveredServers(),
		nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond), nats.ReconnectJitter(100*time.Millisecond, 0),
		nats.PingInterval(time.Second), nats.MaxPingsOutstanding(3), nats.Timeout(3*time.Second),
		nats.RetryOnFailedConnect(true), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", name, err)
	}
	w.mu.Lock()
	w.conns = append(w.conns, nc)
	w.mu.Unlock()
	return nc, nil
}

// nodeOf names the node a client is connected to ("" when it is not).
func (w *Workload) nodeOf(nc *nats.Conn) string {
	u, err := url.Parse(nc.ConnectedUrl())
	if err != nil {
		return ""
	}
	return w.nodes[u.Host]
}

// Probe asks node alone (a connection without failover) for the stream's
// info, a request every node forwards to the leader: it succeeds only
// when the node can reach the leader and get answers back. Any JetStream
// answer counts except "temporarily unavailable" (no leader reachable); a
// missing stream is an answer too (before Setup).
func (w *Workload) Probe(ctx context.Context, node string) error {
	nc, err := nats.Connect(w.b.ClientURL(node), nats.Name("chaos-probe"), nats.MaxReconnects(0),
		nats.IgnoreDiscoveredServers(), nats.Timeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer nc.Close()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	msg, err := nc.RequestWithContext(rctx, "$JS.API.STREAM.INFO."+w.cfg.Stream, nil)
	if err != nil {
		return fmt.Errorf("probe stream info: %w", err)
	}
	if bytes.Contains(msg.Data, []byte(`"code":503`)) {
		return fmt.Errorf("probe stream info: %s", msg.Data)
	}
	return nil
}

// Setup creates the stream (no limits; the duplicate window covers the
// run) and the durable consumers, retrying while the new cluster settles.
func (w *Workload) Setup(ctx context.Context) error {
	nc, err := w.connect("setup", 0)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	err = pollUntil(ctx, 60*time.Second, func() error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{
			Name: w.cfg.Stream, Subjects: []string{"chaos.>"}, Storage: jetstream.FileStorage,
			Duplicates: 24 * time.Hour,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	for _, d := range w.cfg.Durables {
		err := pollUntil(ctx, 60*time.Second, func() error {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := js.CreateOrUpdateConsumer(cctx, w.cfg.Stream, jetstream.ConsumerConfig{
				Durable: d, AckPolicy: jetstream.AckExplicitPolicy, AckWait: w.cfg.AckWait,
				MaxDeliver: -1, DeliverPolicy: jetstream.DeliverAllPolicy,
				// few unacked messages at a time, so that the ack loop
				// acks each well within AckWait (otherwise messages wait
				// in the client until the server redelivers them)
				MaxAckPending: 64,
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("create consumer %s: %w", d, err)
		}
	}
	return nil
}

// Start launches the producers and the consumers.
func (w *Workload) Start(ctx context.Context) error {
	for i := range w.cfg.Producers {
		name := fmt.Sprintf("p%d", i+1)
		nc, err := w.connect(name, i)
		if err != nil {
			return err
		}
		js, err := jetstream.New(nc)
		if err != nil {
			return fmt.Errorf("producer %s: %w", name, err)
		}
		w.prodWG.Add(1)
		go w.produce(ctx, name, nc, js)
	}
	for i, d := range w.cfg.Durables {
		if err := w.startDurable(ctx, d, w.cfg.Producers+i); err != nil {
			return err
		}
	}
	return w.startOrdered(ctx, w.cfg.Producers+len(w.cfg.Durables))
}

// produce publishes name-0000001, name-0000002, ... on chaos.<name>, each
// with Nats-Msg-Id = value, strictly one after another: a value is retried
// (same id) after any error until it is acknowledged, and only then does
// the next one start. Every attempt becomes one publish event.
func (w *Workload) produce(ctx context.Context, name string, nc *nats.Conn, js jetstream.JetStream) {
	defer w.prodWG.Done()
	interval := time.Duration(float64(time.Second) / w.cfg.Rate)
	next := time.Now()
	for k := 1; ; k++ {
		select {
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		value := fmt.Sprintf("%s-%07d", name, k)
		if !w.publishValue(ctx, name, nc, js, value) {
			return
		}
		// pace the producer (a rate, not synchronisation)
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			if sleepCtx(ctx, d) != nil {
				return
			}
		} else if d < -interval {
			next = time.Now()
		}
	}
}

// publishValue retries one value until it is acknowledged. It gives up
// (false) when ctx ends or, once the workload is stopping, after the
// finish time StopProducers gave: then the producer stops for good, so
// that no later value can overtake this one.
func (w *Workload) publishValue(ctx context.Context, name string, nc *nats.Conn, js jetstream.JetStream, value string) bool {
	var finishBy time.Time
	for attempt := 1; ; attempt++ {
		ev := Event{Kind: KindPublish, Client: name, Node: w.nodeOf(nc), Value: value, Attempt: attempt, Call: w.h.Now()}
		actx, cancel := context.WithTimeout(ctx, w.cfg.PublishTimeout)
		ack, err := js.Publish(actx, "chaos."+name, []byte(value), jetstream.WithMsgID(value))
		cancel()
		ev.Return = w.h.Now()
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			ev.Outcome, ev.Seq, ev.Duplicate = OutcomeOK, ack.Sequence, ack.Duplicate
		case errors.As(err, &apiErr):
			ev.Outcome, ev.Err = OutcomeFail, err.Error()
		default:
			ev.Outcome, ev.Err = OutcomeUnknown, err.Error()
		}
		if ctx.Err() != nil && err != nil {
			// the run is being torn down: the attempt was cut short by
			// us, not by the cluster
			ev.Outcome = OutcomeUnknown
		}
		w.h.Add(ev)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		select {
		case <-w.stop:
			if finishBy.IsZero() {
				finishBy = time.Now().Add(w.finish)
			}
		default:
		}
		if !finishBy.IsZero() && time.Now().After(finishBy) {
			w.mu.Lock()
			w.stuck = append(w.stuck, fmt.Sprintf("%s gave up on %s after %d attempts (last error: %v)", name, value, attempt, err))
			w.mu.Unlock()
			return false
		}
		if sleepCtx(ctx, 100*time.Millisecond) != nil { // retry back-off
			return false
		}
	}
}

// consumeOpts make a pull consumer notice a lost pull request within a
// couple of seconds (missed heartbeats) and pull again by itself, and keep
// few messages buffered so that they are acked well within AckWait.
func consumeOpts() []jetstream.PullConsumeOpt {
	return []jetstream.PullConsumeOpt{
		jetstream.PullMaxMessages(20),
		jetstream.PullExpiry(5 * time.Second),
		jetstream.PullHeartbeat(time.Second),
		jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) {}),
	}
}

// startDurable consumes durable d from its own client. The Consume
// callback only records the delivery (so its time is when the message
// arrived, not when an earlier ack finished) and queues it; one goroutine
// then DoubleAcks the messages in arrival order, recording each ack's
// outcome. A failed ack is not retried: the message comes back after
// AckWait and is acked then.
func (w *Workload) startDurable(ctx context.Context, d string, first int) error {
	nc, err := w.connect(d, first)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", d, err)
	}
	var cons jetstream.Consumer
	err = pollUntil(ctx, 60*time.Second, func() error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		cons, err = js.Consumer(cctx, w.cfg.Stream, d)
		return err
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", d, err)
	}
	// MaxAckPending keeps the queue short; the capacity is only there so
	// that the callback, which stamps the arrival time, does not wait.
	queue := make(chan pendingAck, 4096)
	w.ackWG.Add(1)
	go w.ackLoop(queue)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if !w.track() {
			return
		}
		defer w.untrack()
		ev, ok := w.deliverEvent(d, nc, m)
		if !ok {
			return
		}
		w.h.Add(ev)
		select {
		case queue <- pendingAck{m: m, ev: ev, nc: nc}:
		case <-w.closing.Done():
		}
	}, consumeOpts()...)
	if err != nil {
		close(queue)
		return fmt.Errorf("consume %s: %w", d, err)
	}
	w.mu.Lock()
	w.consumes = append(w.consumes, cc)
	w.queues = append(w.queues, queue)
	w.mu.Unlock()
	return nil
}

// pendingAck is a delivered message waiting for its DoubleAck.
type pendingAck struct {
	m  jetstream.Msg
	ev Event // the deliver event
	nc *nats.Conn
}

// ackLoop DoubleAcks queued messages one after another until the queue is
// closed, recording one ack event each. Once the workload is closing it
// only empties the queue: those messages stay unacked, which the checker
// allows.
func (w *Workload) ackLoop(queue <-chan pendingAck) {
	defer w.ackWG.Done()
	for p := range queue {
		if w.closing.Err() != nil {
			continue
		}
		ev := p.ev
		ev.Kind, ev.Node, ev.Call = KindAck, w.nodeOf(p.nc), w.h.Now()
		actx, cancel := context.WithTimeout(w.closing, 2*time.Second)
		err := p.m.DoubleAck(actx)
		cancel()
		ev.Return = w.h.Now()
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			ev.Outcome = OutcomeOK
		case errors.As(err, &apiErr), errors.Is(err, nats.ErrNoResponders):
			// the server said the ack did not take hold (no responders:
			// another delivery's ack settled the message, or the leader
			// does not know this delivery)
			ev.Outcome, ev.Err = OutcomeFail, err.Error()
		default:
			ev.Outcome, ev.Err = OutcomeUnknown, err.Error()
		}
		w.h.Add(ev)
	}
}

// track registers a callback in flight unless the consumers are stopped;
// the callback calls untrack when done.
func (w *Workload) track() bool {
	w.cbMu.RLock()
	if w.stopped {
		w.cbMu.RUnlock()
		return false
	}
	return true
}

func (w *Workload) untrack() { w.cbMu.RUnlock() }

// startOrdered reads the whole stream through an ordered consumer ("o1"),
// which recreates itself from the last stream sequence it saw after any
// gap or failover.
func (w *Workload) startOrdered(ctx context.Context, first int) error {
	nc, err := w.connect("o1", first)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("ordered consumer: %w", err)
	}
	var cons jetstream.Consumer
	err = pollUntil(ctx, 60*time.Second, func() error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		cons, err = js.OrderedConsumer(cctx, w.cfg.Stream, jetstream.OrderedConsumerConfig{})
		return err
	})
	if err != nil {
		return fmt.Errorf("ordered consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if !w.track() {
			return
		}
		defer w.untrack()
		ev, ok := w.deliverEvent("o1", nc, m)
		if !ok {
			return
		}
		w.h.Add(ev)
		w.orderedAt.Store(ev.Seq)
	}, consumeOpts()...)
	if err != nil {
		return fmt.Errorf("consume ordered: %w", err)
	}
	w.mu.Lock()
	w.consumes = append(w.consumes, cc)
	w.mu.Unlock()
	return nil
}

// StopProducers tells the producers to stop after their current value and
// waits for them (each retries that value for up to finish). It returns an
// error naming producers that could not finish.
func (w *Workload) StopProducers(finish time.Duration) error {
	w.stopOnce.Do(func() {
		w.finish = finish
		close(w.stop)
	})
	w.prodWG.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.stuck) > 0 {
		return fmt.Errorf("producers stuck: %s", strings.Join(w.stuck, "; "))
	}
	return nil
}

// Drain waits until every durable consumer has acknowledged everything
// (nothing pending, nothing awaiting an ack) and the ordered consumer has
// read up to the stream's last sequence, or until timeout. A timeout is
// not an error here: the checker reports what was not delivered.
func (w *Workload) Drain(ctx context.Context, timeout time.Duration) error {
	nc, err := w.connect("drain", 0)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	return pollUntil(ctx, timeout, func() error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		s, err := js.Stream(cctx, w.cfg.Stream)
		if err != nil {
			return err
		}
		last := s.CachedInfo().State.LastSeq
		for _, d := range w.cfg.Durables {
			c, err := js.Consumer(cctx, w.cfg.Stream, d)
			if err != nil {
				return err
			}
			info := c.CachedInfo()
			if info.NumPending > 0 || info.NumAckPending > 0 {
				return fmt.Errorf("%s: %d pending, %d awaiting ack", d, info.NumPending, info.NumAckPending)
			}
		}
		if at := w.orderedAt.Load(); at < last {
			return fmt.Errorf("ordered consumer at %d of %d", at, last)
		}
		return nil
	})
}

// Close stops the producers (at once, if StopProducers did not) and the
// consumers, waits for their callbacks and pending acks, and closes every
// connection. It may be called more than once.
func (w *Workload) Close() {
	w.closeNow()
	w.stopOnce.Do(func() { close(w.stop) })
	w.mu.Lock()
	consumes, conns, queues := w.consumes, w.conns, w.queues
	w.consumes, w.conns, w.queues = nil, nil, nil
	w.mu.Unlock()
	for _, cc := range consumes {
		cc.Stop()
	}
	w.cbMu.Lock()
	w.stopped = true
	w.cbMu.Unlock()
	// no callback runs any more: the ack loops finish what is queued
	for _, q := range queues {
		close(q)
	}
	w.ackWG.Wait()
	for _, nc := range conns {
		nc.Close()
	}
	// producers still retrying see the closed connections and give up
	w.prodWG.Wait()
}

// deliverEvent is the history event for a message consumer client received
// (false when its reply is not an ack subject: nothing to record).
func (w *Workload) deliverEvent(client string, nc *nats.Conn, m jetstream.Msg) (Event, bool) {
	md, err := m.Metadata()
	if err != nil {
		return Event{}, false
	}
	now := w.h.Now()
	return Event{Kind: KindDeliver, Client: client, Node: w.nodeOf(nc), Call: now, Return: now, Value: string(m.Data()),
		Seq: md.Sequence.Stream, Consumer: client, ConsumerSeq: md.Sequence.Consumer, Delivered: md.NumDelivered}, true
}
