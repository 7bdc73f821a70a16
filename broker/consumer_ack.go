package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/cluster"
)

// Acks ($JS.ACK.>) and push flow control replies ($JS.FC.>) are published
// by clients on any node. Each node takes them with a local subscription,
// queues them and sends them to the leader in batches, one batch in
// flight at a time (like stream publishes). The leader applies them to
// the live consumers and, when any ack in the batch asked for a reply
// (double ack), answers only once the resulting ops are committed; the
// ingress node then sends the empty replies.

const (
	forwardJSAck = "js.ack" // a batch of acks, applied by the leader's engine
	ackSubject   = "$JS.ACK.>"
	fcSubject    = "$JS.FC.>"
	fcPrefix     = "$JS.FC."
	ackQueue     = 1 << 16
	ackBatchMax  = 4096
)

// ackItem is one ack (or flow control reply) as published by a client.
type ackItem struct {
	subject, reply string
	payload        []byte
}

// ackSubscriber receives acks published on this node.
type ackSubscriber struct{ js *JetStream }

func (a ackSubscriber) Deliver(_ *Subscription, m *Message) {
	it := ackItem{subject: string(m.Subject), reply: string(m.Reply), payload: bytes.Clone(m.Payload)}
	select {
	case a.js.ackQ <- it:
	case <-a.js.stop:
	}
}

// ackWorker forwards queued acks to the leader in batches.
func (js *JetStream) ackWorker() {
	defer js.wg.Done()
	for {
		var first ackItem
		select {
		case <-js.stop:
			return
		case first = <-js.ackQ:
		}
		batch := []ackItem{first}
	fill:
		for len(batch) < ackBatchMax {
			select {
			case it := <-js.ackQ:
				batch = append(batch, it)
			default:
				break fill
			}
		}
		js.sendAcks(batch)
	}
}

func (js *JetStream) sendAcks(batch []ackItem) {
	ctx, cancel := context.WithTimeout(context.Background(), pubTimeout)
	defer cancel()
	confirmed, err := js.raft.Forward(ctx, forwardJSAck, encodeAckBatch(batch))
	if err != nil {
		// Unconfirmed: a client that asked for a reply times out and
		// acks again; acks are idempotent.
		js.log.Warn("acks not applied", zap.Int("acks", len(batch)), zap.Error(err))
		return
	}
	for i, it := range batch {
		if it.reply == "" || isNextAck(it.payload) || i >= len(confirmed) {
			continue
		}
		if confirmed[i] == 1 {
			js.respond(it.reply, nil)
		} else {
			// The leader decided the ack did not take hold: say so at
			// once (a client's DoubleAck fails with no responders, as
			// it does for a deleted consumer with nats-server) rather
			// than let it wait for its timeout, which would leave a
			// client that acks in order ever further behind.
			js.sendStatus(it.reply, StatusNoResponders())
		}
	}
}

// isNextAck reports a +NXT ack, whose reply is a pull request's inbox
// rather than a double-ack confirmation.
func isNextAck(p []byte) bool { return bytes.HasPrefix(bytes.TrimSpace(p), []byte("+NXT")) }

// leaderAck applies a forwarded batch of acks.
func (js *JetStream) leaderAck(_ context.Context, req []byte) ([]byte, error) {
	if !js.raft.IsLeader() {
		return nil, cluster.ErrNotLeader
	}
	items, err := decodeAckBatch(req)
	if err != nil {
		return nil, err
	}
	confirmed, err := js.eng.acks(items)
	if err != nil {
		if errors.Is(err, errEngineNotLeader) {
			return nil, cluster.ErrNotLeader
		}
		return nil, err
	}
	return confirmed, nil
}

// acks applies a batch of acks on the leader and, if any asked for a
// reply, waits until what they changed is committed. It returns one byte
// per ack: 1 when a reply may confirm it, 0 when it did not take hold. An
// ack of a delivery this leader does not know (the previous leader made it
// and died before recording it) changes nothing and is not confirmed: the
// message will be delivered again, and a double ack must never claim an
// ack that did not take hold. Neither is an ack of a message another
// delivery's ack settled.
func (e *engine) acks(items []ackItem) ([]byte, error) {
	e.mu.Lock()
	if !e.leading {
		e.mu.Unlock()
		return nil, errEngineNotLeader
	}
	now := time.Now()
	wantReply := false
	touched := make(map[*consumer]struct{})
	confirmed := make([]byte, len(items))
	for i := range items {
		c, ok := e.ackLocked(&items[i], now)
		if c != nil {
			touched[c] = struct{}{}
		}
		if ok {
			confirmed[i] = 1
		}
		wantReply = wantReply || items[i].reply != ""
	}
	// Acks free max_ack_pending room and NAKs queue redeliveries.
	for c := range touched {
		if len(c.waiting) > 0 || c.cfg.IsPush() {
			e.serveOneLocked(c, now)
		}
	}
	var done chan error
	if wantReply {
		done = make(chan error, 1)
	}
	e.flushLocked(done)
	e.mu.Unlock()
	if done == nil {
		return confirmed, nil
	}
	return confirmed, <-done
}

// ackLocked applies one ack; it returns the consumer it changed, if any,
// and whether a reply may confirm the ack.
func (e *engine) ackLocked(it *ackItem, now time.Time) (*consumer, bool) {
	if len(it.subject) > len(fcPrefix) && it.subject[:len(fcPrefix)] == fcPrefix {
		return e.flowControlReplyLocked(it.subject), true
	}
	ref, ok := ParseAckSubjectString(it.subject)
	if !ok {
		return nil, true // nats-server ignores it and still replies
	}
	c := e.consumer(ref.Stream, ref.Consumer)
	if c == nil {
		// no such consumer (deleted): nothing took the ack; nats-server
		// has no subscriber then and the client gets no responders too
		return nil, false
	}
	ack, ok := ParseAck(it.payload)
	if !ok {
		return nil, true
	}
	if c.cfg.AckPolicy != AckNone && !c.knowsDelivery(ref) {
		return nil, false
	}
	if c.cfg.AckPolicy == AckExplicit {
		p := c.pending[ref.StreamSeq]
		if p == nil {
			// Settled already. Only the ack that settled it, asked again
			// (its reply was lost), is confirmed: a client holding
			// another delivery of the message must not process it too.
			by, ok := c.ackedBy[ref.StreamSeq]
			if ack.Kind == AckNext && it.reply != "" {
				c.active = now
				e.pullLocked(c, it.reply, ack.Next, now) // its pull request still stands
				return c, ok && by == ref.ConsumerSeq
			}
			return nil, ok && by == ref.ConsumerSeq
		}
		if ref.ConsumerSeq < p.cseq && ack.Kind != AckAck && ack.Kind != AckTerm && ack.Kind != AckNext {
			// a NAK or progress of a delivery that was superseded: the
			// latest delivery's holder decides
			return nil, false
		}
		// Any delivery's ack settles a pending message, the first one
		// wins (as with nats-server: a consumer slower than ack_wait
		// still makes progress).
	}
	c.active = now
	switch ack.Kind {
	case AckAck, AckTerm, AckNext:
		e.ackMsgLocked(c, ref, it.reply != "")
		if ack.Kind == AckNext && it.reply != "" {
			e.pullLocked(c, it.reply, ack.Next, now)
		}
	case AckNak:
		if p := c.pending[ref.StreamSeq]; p != nil {
			if ack.Delay > 0 {
				p.deadline = now.Add(ack.Delay)
			} else {
				c.queueRedelivery(ref.StreamSeq, true)
			}
		}
	case AckProgress:
		if p := c.pending[ref.StreamSeq]; p != nil && !p.queued {
			p.deadline = now.Add(c.ackWait(p.deliveries))
		}
	}
	return c, true
}

// rememberAck notes which delivery's ack settled a message (mirroring the
// replicated acked records, which a new leader loads). Whenever the map
// holds twice ackedKeep records it is cut to the highest ackedKeep.
func (c *consumer) rememberAck(ref AckRef) {
	if c.ackedBy == nil {
		c.ackedBy = make(map[uint64]uint64)
	}
	c.ackedBy[ref.StreamSeq] = ref.ConsumerSeq
	if len(c.ackedBy) > 2*ackedKeep {
		seqs := slices.Sorted(maps.Keys(c.ackedBy))
		for _, seq := range seqs[:len(seqs)-ackedKeep] {
			delete(c.ackedBy, seq)
		}
	}
}

// knowsDelivery reports whether the delivery an ack refers to is one this
// leader's state includes: it is pending, or the consumer's delivered
// position is past it (so it was acked, terminated or dropped already).
func (c *consumer) knowsDelivery(ref AckRef) bool {
	if _, ok := c.pending[ref.StreamSeq]; ok {
		return true
	}
	return ref.StreamSeq <= c.delivered.stream && ref.ConsumerSeq <= c.delivered.cons
}

// ackMsgLocked acknowledges a delivered message (with ack_policy all,
// everything delivered up to its consumer sequence).
//
// Which delivery settled the message is remembered (and replicated) only
// for an ack that has a reply, because only such an ack is ever asked
// again: its reply can be lost, and a double ack retried. A plain ack
// gets no answer to retry for, and nats.go refuses a second ack of a
// message it acked. Recording every plain ack cost a bbolt Put on every
// node per consumed message, about a tenth of the leader's CPU under
// `nats bench js consume`.
func (e *engine) ackMsgLocked(c *consumer, ref AckRef, replied bool) {
	if c.cfg.AckPolicy == AckAll {
		for seq, p := range c.pending {
			if p.cseq <= ref.ConsumerSeq && c.removePending(seq) {
				e.record(consumerOp{kind: opAck, stream: c.stream, name: c.name, gen: c.gen, streamSeq: seq})
			}
		}
		return
	}
	if !c.removePending(ref.StreamSeq) {
		return
	}
	op := consumerOp{kind: opAck, stream: c.stream, name: c.name, gen: c.gen, streamSeq: ref.StreamSeq}
	if replied {
		c.rememberAck(ref)
		op.consSeq = ref.ConsumerSeq // the apply records the settling delivery
	}
	e.record(op)
}

// flowControlReplyLocked resumes a push consumer whose client answered
// its flow control request.
func (e *engine) flowControlReplyLocked(subject string) *consumer {
	for _, c := range e.cons {
		if c.fcSubject == subject {
			c.fcSubject = ""
			return c
		}
	}
	return nil
}

// Ack batch wire format (node to leader): count u32, then per ack the
// subject, reply and payload, uvarint-length-prefixed.
func encodeAckBatch(items []ackItem) []byte {
	size := 4
	for i := range items {
		size += 3*binary.MaxVarintLen32 + len(items[i].subject) + len(items[i].reply) + len(items[i].payload)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, size), uint32(len(items)))
	for i := range items {
		b = appendString(b, items[i].subject)
		b = appendString(b, items[i].reply)
		b = appendBytes(b, items[i].payload)
	}
	return b
}

var errBadAckFrame = errors.New("malformed ack batch")

func decodeAckBatch(b []byte) ([]ackItem, error) {
	if len(b) < 4 {
		return nil, errBadAckFrame
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, errBadAckFrame
	}
	items := make([]ackItem, 0, n)
	for range n {
		var subj, reply, payload []byte
		var err error
		if subj, b, err = readBytes(b); err != nil {
			return nil, err
		}
		if reply, b, err = readBytes(b); err != nil {
			return nil, err
		}
		if payload, b, err = readBytes(b); err != nil {
			return nil, err
		}
		items = append(items, ackItem{subject: string(subj), reply: string(reply), payload: payload})
	}
	if len(b) != 0 {
		return nil, errBadAckFrame
	}
	return items, nil
}
