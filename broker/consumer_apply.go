package broker

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/flotilla/flotilla/storage"
)

// consumerApply is the consumer part of one ApplyBatch: the consumers the
// batch touched, cached and written back at its end.
type consumerApply struct {
	touched  map[string]*consumerTx
	order    []*consumerTx
	ops      []consumerOp // decoded ops batch (reused)
	byStream map[string][]*consumerTx
}

// consumerTx is one consumer's working state during a batch.
type consumerTx struct {
	rec     *consumerRecord
	key     []byte
	pending *storage.Bucket
	acked   *storage.Bucket // created on the first explicit ack
	dirty   bool
	deleted bool
}

func (ca *consumerApply) end() {
	clear(ca.touched)
	clear(ca.byStream)
	clear(ca.order)
	ca.order = ca.order[:0]
	ca.ops = ca.ops[:0]
}

// consumer returns the batch's working state of a consumer, nil if there
// is no such consumer.
func (ac *applyCtx) consumer(stream, name string) (*consumerTx, error) {
	key := consumerKey(stream, name)
	if c, ok := ac.cons.touched[string(key)]; ok {
		if c.deleted {
			return nil, nil
		}
		return c, nil
	}
	rec, err := readConsumer(ac.tx, key)
	if err != nil || rec == nil {
		return nil, err
	}
	return ac.trackConsumer(rec, key)
}

func (ac *applyCtx) trackConsumer(rec *consumerRecord, key []byte) (*consumerTx, error) {
	pb, err := ac.tx.CreateBucket(consumerPendingBucket(rec.stream, rec.name))
	if err != nil {
		return nil, err
	}
	c := &consumerTx{rec: rec, key: key, pending: pb}
	delete(ac.cons.byStream, rec.stream) // the stream's consumer set may have changed
	if ac.cons.touched == nil {
		ac.cons.touched = make(map[string]*consumerTx)
	}
	ac.cons.touched[string(key)] = c
	ac.cons.order = append(ac.cons.order, c)
	return c, nil
}

// flushConsumers writes back the state of every consumer the batch
// changed, in first-touched order.
func (ac *applyCtx) flushConsumers() error {
	for _, c := range ac.cons.order {
		if !c.dirty || c.deleted {
			continue
		}
		c.dirty = false
		if err := ac.tx.Put(consumerStateBucket, c.key, c.rec.encodeState(ac.arena.alloc(consumerStateLen)[:0])); err != nil {
			return fmt.Errorf("consumer %s: %w", c.key, err)
		}
	}
	return nil
}

func (f *FSM) applyConsumerCreate(ac *applyCtx, index uint64, body []byte) (any, error) {
	cmd, err := decodeConsumerCreateCmd(body)
	mustDecode(index, err)
	def := ac.cat.defs[cmd.stream]
	if def == nil {
		return f.rejected(index, CmdConsumerCreate, cmd.stream, ErrStreamNotFound()), nil
	}
	var cfg ConsumerConfig
	if err := json.Unmarshal(cmd.config, &cfg); err != nil {
		return f.rejected(index, CmdConsumerCreate, cmd.stream, ErrInvalidJSON(err)), nil
	}
	if e := cfg.Normalize(&def.cfg); e != nil {
		return f.rejected(index, CmdConsumerCreate, cmd.stream, e), nil
	}
	cur, err := ac.consumer(cmd.stream, cmd.name)
	if err != nil {
		return nil, err
	}
	if cur != nil {
		return f.updateConsumer(ac, index, cmd, cur, &cfg)
	}
	if cmd.action == ActionUpdate {
		return f.rejected(index, CmdConsumerCreate, cmd.stream, ErrConsumerDoesNotExist()), nil
	}
	if max := def.cfg.MaxConsumers; max > 0 && len(streamConsumerKeys(ac.tx, cmd.stream)) >= max {
		return f.rejected(index, CmdConsumerCreate, cmd.stream, ErrMaxConsumers()), nil
	}
	if e := ac.checkWorkQueueFilters(def, cmd.name, &cfg); e != nil {
		return f.rejected(index, CmdConsumerCreate, cmd.stream, e), nil
	}
	s, err := ac.stream(def)
	if err != nil {
		return nil, err
	}
	start, boundary, err := s.startSeq(&cfg)
	if err != nil {
		return nil, err
	}
	rec := &consumerRecord{
		stream: cmd.stream, name: cmd.name, gen: index, created: cmd.now, cfg: cfg,
		delivered: seqPair{0, start - 1}, ackFloor: seqPair{0, start - 1}, lpsBoundary: boundary,
	}
	key := consumerKey(cmd.stream, cmd.name)
	if err := ac.writeConsumerDef(key, rec); err != nil {
		return nil, err
	}
	c, err := ac.trackConsumer(rec, key)
	if err != nil {
		return nil, err
	}
	c.dirty = true
	out := *rec
	return &out, nil
}

func (f *FSM) updateConsumer(ac *applyCtx, index uint64, cmd consumerCreateCmd, cur *consumerTx, cfg *ConsumerConfig) (any, error) {
	if SameConsumerConfig(&cur.rec.cfg, cfg) {
		out := *cur.rec
		return &out, nil
	}
	if cmd.action == ActionCreate {
		return f.rejected(index, CmdConsumerCreate, cmd.stream, ErrConsumerExists()), nil
	}
	if e := CheckConsumerUpdate(&cur.rec.cfg, cfg); e != nil {
		return f.rejected(index, CmdConsumerCreate, cmd.stream, e), nil
	}
	rec := *cur.rec
	rec.cfg = *cfg
	if err := ac.writeConsumerDef(cur.key, &rec); err != nil {
		return nil, err
	}
	cur.rec = &rec
	out := rec
	return &out, nil
}

func (ac *applyCtx) writeConsumerDef(key []byte, rec *consumerRecord) error {
	v, err := encodeConsumerDef(rec)
	if err != nil {
		return err
	}
	return ac.tx.Put(consumersBucket, key, v)
}

// Workqueue consumer errors (nats-server errors.json).
const (
	jsErrConsumerWQMultipleUnfiltered uint16 = 10099
	jsErrConsumerWQNotUnique          uint16 = 10100
)

// checkWorkQueueFilters enforces that a workqueue stream's consumers do not
// overlap: each message must have exactly one consumer that removes it.
func (ac *applyCtx) checkWorkQueueFilters(def *streamDef, name string, cfg *ConsumerConfig) *APIError {
	if def.cfg.Retention != WorkQueuePolicy {
		return nil
	}
	for _, k := range streamConsumerKeys(ac.tx, def.name) {
		other, err := ac.consumer(def.name, string(k[len(def.name)+1:]))
		if err != nil || other == nil || other.rec.name == name {
			continue
		}
		a, b := other.rec.cfg.Filters(), cfg.Filters()
		if len(a) == 0 || len(b) == 0 {
			return NewAPIError(400, jsErrConsumerWQMultipleUnfiltered, "multiple non-filtered consumers not allowed on workqueue stream")
		}
		for _, x := range a {
			for _, y := range b {
				if SubjectsOverlap(x, y) {
					return NewAPIError(400, jsErrConsumerWQNotUnique, "filtered consumer not unique on workqueue stream")
				}
			}
		}
	}
	return nil
}

func (f *FSM) applyConsumerDelete(ac *applyCtx, index uint64, body []byte) (any, error) {
	cmd, err := decodeConsumerDeleteCmd(body)
	mustDecode(index, err)
	if ac.cat.defs[cmd.stream] == nil {
		return f.rejected(index, CmdConsumerDelete, cmd.stream, ErrStreamNotFound()), nil
	}
	c, err := ac.consumer(cmd.stream, cmd.name)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return f.rejected(index, CmdConsumerDelete, cmd.stream, ErrConsumerNotFound()), nil
	}
	if err := ac.deleteConsumer(c); err != nil {
		return nil, err
	}
	// An interest stream drops what only this consumer still held.
	def := ac.cat.defs[cmd.stream]
	s, err := ac.stream(def)
	if err != nil {
		return nil, err
	}
	return nil, ac.retainRange(def, c.rec.ackFloor.stream+1, s.c.last)
}

func (ac *applyCtx) deleteConsumer(c *consumerTx) error {
	c.deleted = true
	delete(ac.cons.byStream, c.rec.stream)
	if err := ac.tx.Delete(consumersBucket, c.key); err != nil {
		return err
	}
	if err := ac.tx.Delete(consumerStateBucket, c.key); err != nil {
		return err
	}
	if err := ac.tx.DeleteBucket(consumerAckedBucket(c.rec.stream, c.rec.name)); err != nil {
		return err
	}
	return ac.tx.DeleteBucket(consumerPendingBucket(c.rec.stream, c.rec.name))
}

// deleteConsumersOf deletes every consumer of a stream being deleted.
func (ac *applyCtx) deleteConsumersOf(stream string) error {
	for _, k := range streamConsumerKeys(ac.tx, stream) {
		c, err := ac.consumer(stream, string(k[len(stream)+1:]))
		if err != nil {
			return err
		}
		if c != nil {
			if err := ac.deleteConsumer(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyConsumerOps records deliveries and acks. Ops for a consumer that no
// longer exists (or a different incarnation of its name) are skipped.
func (f *FSM) applyConsumerOps(ac *applyCtx, index uint64, body []byte) (any, error) {
	ops, err := decodeConsumerOps(body, ac.cons.ops[:0])
	ac.cons.ops = ops
	mustDecode(index, err)
	for i := range ops {
		op := &ops[i]
		c, err := ac.consumer(op.stream, op.name)
		if err != nil {
			return nil, err
		}
		if c == nil || c.rec.gen != op.gen {
			continue
		}
		if err := ac.applyConsumerOp(c, op); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func (ac *applyCtx) applyConsumerOp(c *consumerTx, op *consumerOp) error {
	r := c.rec
	key := ac.seqKey(op.streamSeq)
	c.dirty = true
	switch op.kind {
	case opDeliver, opSkip:
		prev := r.delivered.stream
		r.delivered.cons = max(r.delivered.cons, op.consSeq)
		r.delivered.stream = max(r.delivered.stream, op.streamSeq)
		if r.cfg.AckPolicy == AckNone {
			r.ackFloor = r.delivered // nothing to wait for
			return ac.retainRange(ac.cat.defs[r.stream], prev+1, r.delivered.stream)
		}
		if op.kind == opDeliver {
			p := pendingRec{cseq: op.consSeq, deliveries: op.deliveries, ts: op.ts}
			return c.pending.Put(key, encodePendingRec(ac.arena.alloc(pendingRecLen)[:0], p))
		}
		return nil
	case opDrop:
		if c.pending.Get(key) == nil {
			return nil
		}
		if err := c.pending.Delete(key); err != nil {
			return err
		}
	case opAck:
		if c.pending.Get(key) == nil {
			return nil // acked twice, or never pending: nothing to do
		}
		if err := c.pending.Delete(key); err != nil {
			return err
		}
		if r.cfg.AckPolicy == AckExplicit && op.consSeq != 0 {
			if err := ac.recordAcked(c, op.streamSeq, op.consSeq); err != nil {
				return err
			}
		}
		if err := ac.retain(c, op.streamSeq); err != nil {
			return err
		}
	}
	return ac.updateAckFloor(c)
}

// recordAcked remembers which delivery's ack settled a message, so that
// any leader confirms a double ack of that delivery (asked again after a
// lost reply) and of no other (a client holding an older or newer
// delivery of it must not process it too). Once there are more than
// ackedKeep+ackedTrim records the lowest are dropped down to ackedKeep, in
// one pass: dropping the lowest record on every ack meant a Cursor.First
// per ack, which walks the leaves emptied earlier in the same transaction
// (about a tenth of a leader's CPU while consuming). The bucket's sequence
// counts the records.
func (ac *applyCtx) recordAcked(c *consumerTx, seq, cseq uint64) error {
	if c.acked == nil {
		b, err := ac.tx.CreateBucket(consumerAckedBucket(c.rec.stream, c.rec.name))
		if err != nil {
			return err
		}
		c.acked = b
	}
	key := ac.seqKey(seq)
	n := c.acked.Sequence()
	if c.acked.Get(key) == nil {
		n++
	}
	if err := c.acked.Put(key, binary.BigEndian.AppendUint64(ac.arena.alloc(8)[:0], cseq)); err != nil {
		return err
	}
	if n > ackedKeep+ackedTrim {
		// Collect first, then delete by key: a bbolt cursor may skip a key
		// when it moves on after a delete.
		drop := make([][]byte, 0, n-ackedKeep)
		cur := c.acked.Cursor()
		for k, _ := cur.First(); k != nil && uint64(len(drop)) < n-ackedKeep; k, _ = cur.Next() {
			drop = append(drop, append(ac.arena.alloc(len(k))[:0], k...))
		}
		for _, k := range drop {
			if err := c.acked.Delete(k); err != nil {
				return err
			}
		}
		n -= uint64(len(drop))
	}
	return c.acked.SetSequence(n)
}

// updateAckFloor moves the ack floor after an ack: to the delivered
// position when nothing is pending any more, else to just below the
// oldest pending message (it never moves back). As with nats-server the
// floor moves only on acks, not on deliveries.
func (ac *applyCtx) updateAckFloor(c *consumerTx) error {
	k, v := c.pending.Cursor().First()
	if k == nil {
		c.rec.ackFloor = advanceAckFloor(c.rec.ackFloor, c.rec.delivered, 0, 0)
		return nil
	}
	p, ok := decodePendingRec(v)
	if !ok || len(k) != 8 {
		return fmt.Errorf("consumer %s pending: %w", c.key, errCorruptRecord)
	}
	c.rec.ackFloor = advanceAckFloor(c.rec.ackFloor, c.rec.delivered, seqOf(k), p.cseq)
	return nil
}

// advanceAckFloor is the ack floor after an ack, given the oldest pending
// message (stream seq minSeq, consumer seq minCseq; minSeq 0 if none).
func advanceAckFloor(floor, delivered seqPair, minSeq, minCseq uint64) seqPair {
	if minSeq == 0 {
		return delivered
	}
	return seqPair{
		cons:   max(floor.cons, min(minCseq-1, delivered.cons)),
		stream: max(floor.stream, minSeq-1),
	}
}

// retain applies the stream's retention after a consumer acked seq: a
// workqueue stream drops the message (its one consumer is done with it),
// an interest stream once no consumer holds it.
func (ac *applyCtx) retain(c *consumerTx, seq uint64) error {
	def := ac.cat.defs[c.rec.stream]
	if def == nil {
		return nil
	}
	switch def.cfg.Retention {
	case WorkQueuePolicy:
		s, err := ac.stream(def)
		if err != nil {
			return err
		}
		_, err = s.remove(seq)
		return err
	case InterestPolicy:
		return ac.retainRange(def, seq, seq)
	}
	return nil
}
