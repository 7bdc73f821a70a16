package broker

import (
	"context"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/storage"
)

// candidate is the next message a consumer would deliver.
type candidate struct {
	seq        uint64
	msg        *StoredMsg
	redelivery bool
	fromLPS    bool
	deliveries uint64 // this delivery's count (1 for the first)
}

// passLocked runs every consumer's timers and delivers what can be
// delivered, then proposes the resulting ops.
func (e *engine) passLocked(now time.Time) {
	if len(e.cons) == 0 {
		return
	}
	err := e.js.fsm.store.View(func(tx *storage.Tx) error {
		for _, c := range e.cons {
			e.serveLocked(tx, c, now)
		}
		return nil
	})
	if err != nil {
		e.log.Error("consumer pass", zap.Error(err))
	}
	e.flushLocked(nil)
}

// serveOneLocked serves a single consumer now (a new pull request, acks).
func (e *engine) serveOneLocked(c *consumer, now time.Time) {
	err := e.js.fsm.store.View(func(tx *storage.Tx) error {
		e.serveLocked(tx, c, now)
		return nil
	})
	if err != nil {
		e.log.Error("consumer serve", zap.Error(err), zap.String("stream", c.stream), zap.String("consumer", c.name))
	}
	e.flushLocked(nil)
}

// serveLocked runs one consumer's timers and deliveries.
func (e *engine) serveLocked(tx *storage.Tx, c *consumer, now time.Time) {
	r, sc, ok, err := streamReader(tx, c.stream)
	if err != nil || !ok {
		return // the stream is being deleted; its consumers go with it
	}
	e.dueRedeliveries(c, now)
	if c.cfg.IsPush() {
		e.servePush(r, &sc, c, now)
	} else {
		e.servePull(r, &sc, c, now)
	}
	if c.progressHeld && now.Sub(c.progressAt) >= memProgressInterval {
		e.recordProgress(c, now)
	}
	e.checkInactive(c, now)
}

// memProgressInterval is how often the delivered position of an ack-none
// consumer with mem_storage is replicated while it delivers.
const memProgressInterval = time.Second

// recordProgress queues an ack-none consumer's delivered position (a skip
// op). Nothing is confirmed per delivery, so the position only tells a new
// leader where to resume. A consumer that asked for its state to be kept
// in memory (mem_storage: ordered consumers do) has it replicated at most
// once per memProgressInterval, and the last position within one interval
// after its deliveries stop: otherwise it costs a Raft entry, a log sync
// and a state-file commit on every node each time the engine flushes:
// two thirds of the nodes' CPU while an ordered consumer read. The
// price: after a leader change it resumes up to an interval behind, so it
// delivers those messages again under the same consumer sequences (an
// ordered consumer sees the sequence go back and recreates itself at the
// stream position it reached).
func (e *engine) recordProgress(c *consumer, now time.Time) {
	if c.cfg.MemoryStorage && now.Sub(c.progressAt) < memProgressInterval {
		c.progressHeld = true
		return
	}
	c.progressAt, c.progressHeld = now, false
	e.record(consumerOp{kind: opSkip, stream: c.stream, name: c.name, gen: c.gen, streamSeq: c.delivered.stream, consSeq: c.delivered.cons})
}

// dueRedeliveries queues, in stream order, the pending messages whose ack
// wait ran out.
func (e *engine) dueRedeliveries(c *consumer, now time.Time) {
	if len(c.pending) == 0 {
		return
	}
	var due []uint64
	for seq, p := range c.pending {
		if !p.queued && !now.Before(p.deadline) {
			due = append(due, seq)
		}
	}
	slices.Sort(due)
	for _, seq := range due {
		c.queueRedelivery(seq, false)
	}
}

// servePull answers the consumer's waiting requests in order.
func (e *engine) servePull(r msgReader, sc *streamCounters, c *consumer, now time.Time) {
	// Expiry and heartbeats first, for every waiting request.
	kept := c.waiting[:0]
	for _, req := range c.waiting {
		switch {
		case !e.js.b.HasInterest([]byte(req.reply)):
			continue // the client is gone: its request must not hold a max_waiting slot
		case !req.expires.IsZero() && !now.Before(req.expires):
			e.js.sendStatus(req.reply, StatusRequestTimeout(req.batch, req.bytesLeft))
			continue
		case req.hb > 0 && now.Sub(req.lastSent) >= req.hb:
			e.js.sendStatus(req.reply, StatusIdleHeartbeat(c.delivered.cons, c.delivered.stream, ""))
			req.lastSent = now
		}
		kept = append(kept, req)
	}
	clear(c.waiting[len(kept):])
	c.waiting = kept
	if len(c.waiting) > 0 {
		c.active = now
	}
	if c.paused(now) {
		return
	}
	sent := 0
	for len(c.waiting) > 0 && sent < maxDeliverPerRun {
		req := c.waiting[0]
		if !e.js.b.HasInterest([]byte(req.reply)) {
			c.popRequest() // the client is gone: deliver nothing into the void
			continue
		}
		cand := e.peek(r, c, now)
		if cand == nil {
			if req.noWait && (req.expires.IsZero() || req.sent > 0) {
				e.js.sendStatus(req.reply, StatusNoMessages())
				c.popRequest()
				continue
			}
			return
		}
		ack := e.ackReply(r, sc, c, cand)
		size := len(cand.msg.Subject) + len(ack) + len(cand.msg.Header) + len(cand.msg.Data)
		if req.maxBytes > 0 && size > req.bytesLeft {
			e.js.sendStatus(req.reply, StatusConflict(StatusTextMaxBytesExceeded, req.batch, req.bytesLeft, true))
			c.popRequest()
			continue
		}
		e.deliver(c, cand, ack, []byte(req.reply), now)
		sent++
		req.batch--
		req.sent++
		req.lastSent = now
		if req.maxBytes > 0 {
			req.bytesLeft -= size
		}
		if req.batch <= 0 {
			if req.maxBytes > 0 && req.bytesLeft > 0 {
				e.js.sendStatus(req.reply, StatusConflict(StatusTextBatchCompleted, 0, req.bytesLeft, true))
			}
			c.popRequest()
		}
	}
}

func (c *consumer) popRequest() {
	c.waiting[0] = nil
	c.waiting = c.waiting[1:]
}

// servePush sends to a push consumer's deliver subject while it has
// interest, within flow control, plus idle heartbeats.
func (e *engine) servePush(r msgReader, sc *streamCounters, c *consumer, now time.Time) {
	target := []byte(c.cfg.DeliverSubject)
	if !e.js.b.HasInterest(target) {
		return // paused until someone subscribes
	}
	c.active = now
	for sent := 0; c.fcSubject == "" && !c.paused(now) && sent < maxDeliverPerRun; sent++ {
		cand := e.peek(r, c, now)
		if cand == nil {
			break
		}
		size := e.deliver(c, cand, e.ackReply(r, sc, c, cand), target, now)
		c.lastSent = now
		if !c.cfg.FlowControl {
			continue
		}
		c.fcMsgs++
		c.fcBytes += size
		if c.fcMsgs >= fcMsgsWindow || c.fcBytes >= fcBytesWindow {
			e.requestFlowControl(c)
		}
	}
	if hb := c.cfg.Heartbeat; hb > 0 && now.Sub(c.lastSent) >= hb {
		e.js.b.publishCore(&Message{Subject: target, Header: StatusIdleHeartbeat(c.delivered.cons, c.delivered.stream, c.fcSubject)})
		c.lastSent = now
	}
}

// requestFlowControl asks the push client to confirm it processed what was
// sent so far; nothing more is sent until it answers.
func (e *engine) requestFlowControl(c *consumer) {
	c.fcSubject = "$JS.FC." + c.stream + "." + c.name + "." + strconv.FormatUint(uint64(time.Now().UnixNano())&0xffffff, 36)
	c.fcMsgs, c.fcBytes = 0, 0
	e.js.b.publishCore(&Message{Subject: []byte(c.cfg.DeliverSubject), Reply: []byte(c.fcSubject), Header: StatusFlowControl()})
}

// peek finds the consumer's next message: a due redelivery first, then
// the next new message that passes its filters (within max_ack_pending).
func (e *engine) peek(r msgReader, c *consumer, now time.Time) *candidate {
	for len(c.redeliver) > 0 {
		seq := c.redeliver[0]
		p := c.pending[seq]
		if p == nil {
			c.redeliver = c.redeliver[1:]
			continue
		}
		if c.cfg.MaxDeliver > 0 && p.deliveries >= uint64(c.cfg.MaxDeliver) {
			// Delivered as often as allowed: it stops being pending
			// (the stream keeps it).
			c.removePending(seq)
			e.record(consumerOp{kind: opDrop, stream: c.stream, name: c.name, gen: c.gen, streamSeq: seq})
			continue
		}
		m, err := r.load(seq)
		if err != nil || m == nil {
			c.removePending(seq) // gone from the stream (limits, purge)
			e.record(consumerOp{kind: opDrop, stream: c.stream, name: c.name, gen: c.gen, streamSeq: seq})
			continue
		}
		return &candidate{seq: seq, msg: m, redelivery: true, deliveries: p.deliveries + 1}
	}
	if !c.canDeliverMore() {
		return nil
	}
	for len(c.lps) > 0 {
		seq := c.lps[0]
		if seq <= c.delivered.stream {
			c.lps = c.lps[1:]
			continue
		}
		m, err := r.load(seq)
		if err != nil || m == nil {
			c.lps = c.lps[1:]
			continue
		}
		return &candidate{seq: seq, msg: m, fromLPS: true, deliveries: 1}
	}
	from := c.delivered.stream + 1
	if c.lpsBoundary > 0 {
		from = max(from, c.lpsBoundary+1)
	}
	seq := r.nextMatching(c.cfg.Filters(), from)
	if seq == 0 {
		return nil
	}
	m, err := r.load(seq)
	if err != nil || m == nil {
		return nil
	}
	if c.cfg.ReplayPolicy == ReplayOriginal && !c.replayAt.IsZero() && now.Before(c.replayAt.Add(m.Time.Sub(c.replayTime))) {
		return nil // replay original: not yet, the gap since the previous message must pass
	}
	return &candidate{seq: seq, msg: m, deliveries: 1}
}

// ackReply builds the ack reply subject the candidate would be delivered
// with: its delivery count, sequences, store time and how many messages
// the consumer has left after it.
func (e *engine) ackReply(r msgReader, sc *streamCounters, c *consumer, cand *candidate) []byte {
	delivered, lps := c.delivered.stream, c.lps
	if !cand.redelivery {
		c.delivered.stream = max(delivered, cand.seq)
		if cand.fromLPS {
			c.lps = c.lps[1:]
		}
	}
	pending := c.numPending(r, sc)
	c.delivered.stream, c.lps = delivered, lps
	return AppendAckSubject(make([]byte, 0, 64+len(c.stream)+len(c.name)), c.stream, c.name,
		cand.deliveries, cand.seq, c.delivered.cons+1, unixNano(cand.msg.Time), pending)
}

// deliver sends a candidate to target with its ack reply, updates the live
// state and records the op. It returns the message's size.
func (e *engine) deliver(c *consumer, cand *candidate, ack, target []byte, now time.Time) int {
	c.delivered.cons++
	if cand.redelivery {
		c.redeliver = c.redeliver[1:]
	} else {
		c.delivered.stream = max(c.delivered.stream, cand.seq)
		if cand.fromLPS {
			c.lps = c.lps[1:]
		}
		c.replayAt, c.replayTime = now, cand.msg.Time
	}
	cseq := c.delivered.cons
	if c.cfg.AckPolicy == AckNone {
		c.ackFloor = c.delivered
		e.recordProgress(c, now)
	} else {
		c.pending[cand.seq] = &pendingState{
			pendingRec: pendingRec{cseq: cseq, deliveries: cand.deliveries, ts: now.UnixNano()},
			deadline:   now.Add(c.ackWait(cand.deliveries)),
		}
		e.record(consumerOp{kind: opDeliver, stream: c.stream, name: c.name, gen: c.gen,
			streamSeq: cand.seq, consSeq: cseq, deliveries: cand.deliveries, ts: now.UnixNano()})
	}
	m := &Message{Subject: []byte(cand.msg.Subject), Target: target, Reply: ack, Header: cand.msg.Header, Payload: cand.msg.Data}
	if c.cfg.HeadersOnly {
		m.Header = withMsgSize(cand.msg.Header, len(cand.msg.Data))
		m.Payload = nil
	}
	e.js.b.publishCore(m)
	return len(m.Subject) + len(ack) + len(m.Header) + len(m.Payload)
}

// withMsgSize adds Nats-Msg-Size to a header block (headers_only).
func withMsgSize(hdr []byte, size int) []byte {
	line := "Nats-Msg-Size: " + strconv.Itoa(size) + "\r\n"
	if len(hdr) < 4 {
		return []byte("NATS/1.0\r\n" + line + "\r\n")
	}
	out := make([]byte, 0, len(hdr)+len(line))
	out = append(out, hdr[:len(hdr)-2]...) // drop the final empty line
	out = append(out, line...)
	return append(out, "\r\n"...)
}

// checkInactive deletes, through Raft, a consumer that nobody used for its
// inactive_threshold.
func (e *engine) checkInactive(c *consumer, now time.Time) {
	t := c.cfg.InactiveThreshold
	if t <= 0 || c.deleting || len(c.waiting) > 0 || now.Sub(c.active) < t {
		return
	}
	c.deleting = true
	go e.deleteInactive(c.stream, c.name, c.gen)
}

func (e *engine) deleteInactive(stream, name string, gen uint64) {
	e.log.Info("deleting inactive consumer", zap.String("stream", stream), zap.String("consumer", name))
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	res, err := e.js.raft.Apply(ctx, EncodeConsumerDelete(stream, name))
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.consumer(stream, name)
	if c == nil || c.gen != gen {
		return
	}
	if err != nil {
		c.deleting = false // try again on a later pass
		return
	}
	if ae, ok := res.(*APIError); ok && ae != nil {
		e.log.Debug("inactive consumer delete rejected", zap.String("reason", ae.Description))
	}
	e.removeLocked(stream, name)
}
