package broker

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/storage"
)

// engine is the consumer delivery engine (DESIGN.md §4 "Consumers"). It is
// active only on the Raft leader: it holds every consumer's live state,
// serves pull requests and push consumers, processes acks and times
// redeliveries. What it decides (deliveries, acks) is recorded through
// Raft in batched consumer_ops entries, so a new leader loads the
// replicated state and resumes: a delivery whose record was not committed
// before a leader died is delivered again (at least once), and an ack is
// confirmed to a client (double ack) only once committed.
//
// Waiting pull requests are not replicated: when leadership is lost they
// are answered with 409 Leadership Change and clients pull again.
type engine struct {
	js  *JetStream
	log *zap.Logger

	mu      sync.Mutex
	leading bool
	cons    map[string]*consumer // by "stream/name"

	// Ops decided and not yet proposed. Ops are numbered in decision
	// order: opsBase is the number of the first one in ops (all before it
	// were handed to a proposal), committed the number up to which
	// proposals have committed. A waiter is released once committed
	// reaches the ops decided when it registered.
	ops       []consumerOp
	opsBase   uint64
	committed uint64
	waiters   []opWaiter
	proposing bool

	kick chan struct{}
}

// Engine tunables.
const (
	engineTick       = 20 * time.Millisecond // timers: expiry, heartbeats, ack wait
	leaderLoadWait   = 5 * time.Second       // how long API calls wait for the engine to load
	maxOpsPerEntry   = 4096                  // consumer ops per Raft entry
	fcMsgsWindow     = 512                   // push flow control: messages per request
	fcBytesWindow    = 2 << 20               // push flow control: bytes per request
	maxDeliverPerRun = 1024                  // messages per consumer per pass, for fairness
)

var errEngineNotLeader = errors.New("consumer engine: not the leader")

// opWaiter waits for the ops decided up to upTo to be committed.
type opWaiter struct {
	upTo uint64
	done chan error
}

func newEngine(js *JetStream) *engine {
	return &engine{js: js, log: js.log.Named("consumers"), cons: make(map[string]*consumer), kick: make(chan struct{}, 1)}
}

// wake asks the loop to run a pass soon (new messages stored).
func (e *engine) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// run is the engine's loop: it follows leadership and runs timers.
func (e *engine) run() {
	defer e.js.wg.Done()
	t := time.NewTicker(engineTick)
	defer t.Stop()
	for {
		select {
		case <-e.js.stop:
			e.mu.Lock()
			e.resetLocked("")
			e.mu.Unlock()
			return
		case <-t.C:
		case <-e.kick:
		}
		leader := e.js.raft.IsLeader()
		e.mu.Lock()
		leading := e.leading
		if leading && !leader {
			e.resetLocked("Leadership Change")
		}
		e.mu.Unlock()
		if !leading && leader {
			e.load()
			continue
		}
		if leading && leader {
			e.mu.Lock()
			e.passLocked(time.Now())
			e.mu.Unlock()
		}
	}
}

// load makes this (new) leader's engine current: it waits until the local
// state machine has applied everything committed before, then loads every
// consumer from it.
func (e *engine) load() {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	if err := e.js.raft.Barrier(ctx); err != nil {
		e.log.Debug("consumer engine barrier failed", zap.Error(err))
		return
	}
	now := time.Now()
	loaded := make(map[string]*consumer)
	err := e.js.fsm.store.View(func(tx *storage.Tx) error {
		return tx.ForEach(consumersBucket, func(k, _ []byte) error {
			rec, err := readConsumer(tx, k)
			if err != nil || rec == nil {
				return err
			}
			pending, err := readPending(tx, rec.stream, rec.name)
			if err != nil {
				return err
			}
			acked, err := readAcked(tx, rec.stream, rec.name)
			if err != nil {
				return err
			}
			c := newConsumer(rec, pending, acked, now)
			e.initLPS(tx, c)
			loaded[string(k)] = c
			return nil
		})
	})
	if err != nil {
		e.log.Error("load consumers", zap.Error(err))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.js.raft.IsLeader() {
		return
	}
	e.cons, e.leading = loaded, true
	for _, c := range loaded {
		e.skipUnrecordedSeqsLocked(c)
	}
	e.log.Info("consumer engine active", zap.Int("consumers", len(loaded)))
	e.passLocked(now)
}

// cseqFailoverGap is how far a new leader moves an acking consumer's
// consumer sequence past the replicated one.
const cseqFailoverGap = 1 << 16

// skipUnrecordedSeqsLocked moves an acking consumer's next consumer
// sequence past any the previous leader may have used for deliveries it
// did not get to record. Otherwise this leader could deliver the same
// message again under the very same ack subject (same stream and consumer
// sequence), and a client that double-acks both copies would get both
// confirmed: one message processed twice. The jump is replicated (a skip
// op) so a later leader starts above it too.
func (e *engine) skipUnrecordedSeqsLocked(c *consumer) {
	if c.cfg.AckPolicy == AckNone {
		return // nothing is confirmed per delivery; ordered consumers need gapless sequences
	}
	c.delivered.cons += cseqFailoverGap
	e.record(consumerOp{kind: opSkip, stream: c.stream, name: c.name, gen: c.gen, streamSeq: c.delivered.stream, consSeq: c.delivered.cons})
}

// initLPS computes the last_per_subject sequences a consumer still has to
// deliver.
func (e *engine) initLPS(tx *storage.Tx, c *consumer) {
	if c.lpsBoundary == 0 || c.delivered.stream >= c.lpsBoundary {
		return
	}
	r, _, ok, err := streamReader(tx, c.stream)
	if err != nil || !ok {
		return
	}
	for _, seq := range r.lastPerSubject(c.cfg.Filters(), c.lpsBoundary) {
		if seq > c.delivered.stream {
			c.lps = append(c.lps, seq)
		}
	}
}

// resetLocked drops the live state when leadership is lost (status is the
// 409 text waiting requests get; "" sends nothing).
func (e *engine) resetLocked(status string) {
	if status != "" {
		for _, c := range e.cons {
			for _, r := range c.waiting {
				e.js.sendStatus(r.reply, StatusConflict(status, 0, 0, false))
			}
		}
	}
	for _, w := range e.waiters {
		w.done <- errEngineNotLeader
	}
	e.cons, e.leading = make(map[string]*consumer), false
	e.ops, e.waiters = nil, nil
	e.committed = e.opsBase // nothing left to wait for
	if status != "" {
		e.log.Info("consumer engine inactive")
	}
}

// waitLeading waits (bounded) until the engine serves as leader.
func (e *engine) waitLeading() bool {
	deadline := time.Now().Add(leaderLoadWait)
	for {
		e.mu.Lock()
		ok := e.leading
		e.mu.Unlock()
		if ok {
			return true
		}
		if !e.js.raft.IsLeader() || time.Now().After(deadline) {
			return false
		}
		select {
		case <-e.js.stop:
			return false
		case <-time.After(5 * time.Millisecond): // polling the loader
		}
	}
}

// record queues an op for the next proposal.
func (e *engine) record(op consumerOp) {
	// Deliveries of ack-none consumers only move the delivered position:
	// consecutive ones collapse into the last.
	if op.kind == opSkip && len(e.ops) > 0 {
		last := &e.ops[len(e.ops)-1]
		if last.kind == opSkip && last.gen == op.gen && last.stream == op.stream && last.name == op.name {
			*last = op
			return
		}
	}
	e.ops = append(e.ops, op)
}

// flushLocked proposes the queued ops unless a proposal is in flight
// (then they go in the next one, so ops reach Raft in decision order).
// done, if not nil, gets the result once every op decided so far is
// committed; under a steady stream of new deliveries it does not wait for
// those decided later.
func (e *engine) flushLocked(done chan error) {
	if done != nil {
		e.waiters = append(e.waiters, opWaiter{upTo: e.opsBase + uint64(len(e.ops)), done: done})
		e.releaseLocked(nil)
	}
	if e.proposing || len(e.ops) == 0 {
		return // a proposal in flight flushes again when it commits
	}
	n := min(len(e.ops), maxOpsPerEntry)
	ops := e.ops[:n:n]
	e.ops = append([]consumerOp(nil), e.ops[n:]...)
	e.opsBase += uint64(n)
	e.proposing = true
	go e.propose(ops, e.opsBase)
}

// releaseLocked answers the waiters whose ops are committed (all of them,
// with err, when err is not nil).
func (e *engine) releaseLocked(err error) {
	kept := e.waiters[:0]
	for _, w := range e.waiters {
		if err != nil || w.upTo <= e.committed {
			w.done <- err
			continue
		}
		kept = append(kept, w)
	}
	clear(e.waiters[len(kept):])
	e.waiters = kept
}

func (e *engine) propose(ops []consumerOp, upTo uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	_, err := e.js.raft.Apply(ctx, encodeConsumerOps(ops))
	cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.proposing = false
	if err != nil {
		// The live state is ahead of what is replicated, and some of it
		// may never be: start again from the replicated state (waiters
		// get the error).
		e.log.Warn("consumer state not replicated; reloading", zap.Int("ops", len(ops)), zap.Error(err))
		e.releaseLocked(err)
		if e.leading {
			e.resetLocked("Leadership Change")
		}
		return
	}
	e.committed = max(e.committed, upTo)
	e.releaseLocked(nil)
	e.flushLocked(nil)
}

// consumer returns a live consumer, nil if none.
func (e *engine) consumer(stream, name string) *consumer {
	return e.cons[stream+"/"+name]
}

// streamConsumers returns a stream's consumers sorted by name.
func (e *engine) streamConsumers(stream string) []*consumer {
	var out []*consumer
	for _, c := range e.cons {
		if c.stream == stream {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// removeLocked drops a consumer (deleted), telling its waiting requests.
func (e *engine) removeLocked(stream, name string) {
	c := e.consumer(stream, name)
	if c == nil {
		return
	}
	for _, r := range c.waiting {
		e.js.sendStatus(r.reply, StatusConflict(StatusTextConsumerDeleted, 0, 0, false))
	}
	delete(e.cons, c.key())
}

// removeStreamLocked drops every consumer of a deleted stream.
func (e *engine) removeStreamLocked(stream string) {
	for _, c := range e.streamConsumers(stream) {
		e.removeLocked(c.stream, c.name)
	}
}
