package broker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/cluster"
)

// Raft is what the JetStream service needs from the cluster node
// (*cluster.Node satisfies it).
type Raft interface {
	Apply(ctx context.Context, cmd []byte) (any, error)
	Propose(ctx context.Context, cmd []byte) *cluster.Proposal
	Forward(ctx context.Context, kind string, req []byte) ([]byte, error)
	HandleForward(kind string, h cluster.ForwardHandler)
	Barrier(ctx context.Context) error
	AppliedIndex() uint64
	Leader() (id, addr string)
	IsLeader() bool
	ID() string
}

var _ Raft = (*cluster.Node)(nil)

// Forwarded request kinds of the JetStream service.
const (
	forwardJSAPI = "js.api" // one $JS.API request, executed on the leader
	forwardJSPub = "js.pub" // a batch of stream publishes, proposed by the leader
)

// Tunables of the JetStream service.
const (
	apiWorkers     = 8                // concurrent API requests per node
	apiQueue       = 1024             // queued API requests per node
	apiTimeout     = 10 * time.Second // one API request, including an election
	readYourWrites = 2 * time.Second  // longest wait for the local replica to catch up
	expireEvery    = time.Second      // how often the leader proposes age-based expiry
	pubQueueMsgs   = 1 << 16          // queued stream publishes per node
	pubBatchMsgs   = 1024             // messages per forwarded batch
	pubBatchBytes  = 8 << 20          // bytes per forwarded batch
	pubTimeout     = 10 * time.Second // one forwarded batch, including an election
	apiPrefix      = "$JS.API."
	apiSubject     = apiPrefix + ">"
)

// JetStream serves the JetStream API subset and stores client publishes
// that streams capture. Every node runs it: requests from a node's clients
// are answered by that node, after the leader executed them (reads and
// Raft proposals alike), so exactly one node replies to each request.
type JetStream struct {
	b    *Broker
	fsm  *FSM
	raft Raft
	log  *zap.Logger

	eng    *engine
	pulls  *pullTracker
	apiSub *Subscription
	ackSub *Subscription
	fcSub  *Subscription
	apiQ   chan apiRequest
	pubQ   *pubQueue
	ackQ   chan ackItem
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

// NewJetStream returns the service; Start registers it.
func NewJetStream(b *Broker, fsm *FSM, r Raft, log *zap.Logger) *JetStream {
	js := &JetStream{
		b:    b,
		fsm:  fsm,
		raft: r,
		log:  log.Named("jetstream"),
		apiQ: make(chan apiRequest, apiQueue),
		ackQ: make(chan ackItem, ackQueue),
		stop: make(chan struct{}),
	}
	js.pubQ = newPubQueue(pubQueueMsgs, js.stop)
	js.eng = newEngine(js)
	js.pulls = newPullTracker()
	return js
}

// Start registers the leader-side handlers, the local $JS.API.> responder
// and the stream capture hook, and starts the workers.
func (js *JetStream) Start() error {
	js.raft.HandleForward(forwardJSAPI, js.leaderAPI)
	js.raft.HandleForward(forwardJSPub, js.leaderPublish)
	js.raft.HandleForward(forwardJSAck, js.leaderAck)
	js.apiSub = &Subscription{Subject: apiSubject, SID: "jsapi", Client: apiSubscriber{js}, Local: true}
	js.ackSub = &Subscription{Subject: ackSubject, SID: "jsack", Client: ackSubscriber{js}, Local: true}
	js.fcSub = &Subscription{Subject: fcSubject, SID: "jsfc", Client: ackSubscriber{js}, Local: true}
	for _, sub := range []*Subscription{js.apiSub, js.ackSub, js.fcSub} {
		if err := js.b.Subscribe(sub); err != nil {
			return fmt.Errorf("subscribe %s: %w", sub.Subject, err)
		}
	}
	js.fsm.SetApplyHook(js.eng.wake)
	js.b.SetCapturer(js)
	js.wg.Add(apiWorkers + 5)
	for range apiWorkers {
		go js.apiWorker()
	}
	go js.pubWorker()
	go js.ackWorker()
	go js.eng.run()
	go js.expireLoop()
	go js.pullTrackLoop()
	return nil
}

// Shutdown stops taking requests and publishes, and waits for the workers.
func (js *JetStream) Shutdown() {
	js.once.Do(func() {
		js.b.SetCapturer(nil)
		js.fsm.SetApplyHook(nil)
		for _, sub := range []*Subscription{js.apiSub, js.ackSub, js.fcSub} {
			if sub != nil {
				js.b.Unsubscribe(sub)
			}
		}
		close(js.stop)
		js.wg.Wait()
	})
}

// respond publishes a system message (API response, PubAck) to a reply
// subject through core routing; it is never captured by a stream. Each
// reply subject belongs to one request (clients answer every publish or
// request on its own inbox token), so its match is not cached.
// One answer: a batch of them goes through one replier.
func (js *JetStream) respond(reply string, body []byte) {
	r := replier{js: js}
	r.respond(reply, body)
}

// replier answers many requests in a row, the PubAcks of a publish batch,
// through one Message and one subject buffer: subscribers copy what they
// keep (Subscriber), so both are reused and an answer allocates nothing.
// A Message and a subject copy per answer were a third of the allocations
// a leader made per message under async publishing.
type replier struct {
	js *JetStream
	m  Message
}

func (r *replier) respond(reply string, body []byte) {
	if reply == "" {
		return
	}
	r.m = Message{Subject: append(r.m.Subject[:0], reply...), Payload: body, Once: true}
	r.js.b.publishCore(&r.m)
}

// waitApplied gives read-your-writes on this node: after the leader
// applied a change at index idx, the answer is sent only once the local
// replica has applied it too (bounded), so a client's next request to this
// node sees its own change.
func (js *JetStream) waitApplied(idx uint64) {
	deadline := time.Now().Add(readYourWrites)
	for js.raft.AppliedIndex() < idx && time.Now().Before(deadline) {
		select {
		case <-js.stop:
			return
		case <-time.After(time.Millisecond): // polling the apply index
		}
	}
}

// expireLoop makes the leader propose age-based expiry (max_age, the
// dedup window) with its clock, so every replica expires the same
// messages at the same log position.
func (js *JetStream) expireLoop() {
	js.every(expireEvery, func() {
		if !js.raft.IsLeader() || len(js.fsm.StreamNames("")) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		defer cancel()
		if _, err := js.raft.Apply(ctx, EncodeExpire(time.Now())); err != nil {
			js.log.Debug("expire proposal failed", zap.Error(err))
		}
	})
}

// every runs fn each period until Stop (for the goroutines Start counts in
// js.wg).
func (js *JetStream) every(period time.Duration, fn func()) {
	defer js.wg.Done()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-js.stop:
			return
		case <-t.C:
			fn()
		}
	}
}
