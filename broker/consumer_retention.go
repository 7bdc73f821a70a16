package broker

// Retention decided by consumers, in the apply (so every replica removes
// the same messages at the same log position):
//
//   - workqueue: a message is removed when its (one) consumer acks it;
//   - interest: a message is removed once every consumer whose filters
//     match its subject has acknowledged it (ack none: delivered; a
//     consumer that started after it never wanted it), and at once when
//     it is stored while no consumer matches it.

// streamConsumers returns the batch's working state of every consumer of
// a stream (loaded once per batch; consumer create and delete reset it).
func (ac *applyCtx) streamConsumers(stream string) ([]*consumerTx, error) {
	if cs, ok := ac.cons.byStream[stream]; ok {
		return cs, nil
	}
	var cs []*consumerTx
	for _, k := range streamConsumerKeys(ac.tx, stream) {
		c, err := ac.consumer(stream, string(k[len(stream)+1:]))
		if err != nil {
			return nil, err
		}
		if c != nil {
			cs = append(cs, c)
		}
	}
	if ac.cons.byStream == nil {
		ac.cons.byStream = make(map[string][]*consumerTx)
	}
	ac.cons.byStream[stream] = cs
	return cs, nil
}

// done reports whether the consumer no longer holds message seq.
func (c *consumerTx) done(ac *applyCtx, seq uint64) bool {
	r := c.rec
	if seq <= r.ackFloor.stream {
		return true
	}
	if seq > r.delivered.stream {
		return false
	}
	return r.cfg.AckPolicy == AckNone || c.pending.Get(ac.seqKey(seq)) == nil
}

// interested reports whether any consumer still holds message seq on
// subject.
func (ac *applyCtx) interested(stream string, seq uint64, subject string) (bool, error) {
	cs, err := ac.streamConsumers(stream)
	if err != nil {
		return false, err
	}
	for _, c := range cs {
		if !c.deleted && matchesFilters(c.rec.cfg.Filters(), subject) && !c.done(ac, seq) {
			return true, nil
		}
	}
	return false, nil
}

// retainRange removes the messages in [from, to] of an interest stream
// that no consumer holds any more.
func (ac *applyCtx) retainRange(def *streamDef, from, to uint64) error {
	if def.cfg.Retention != InterestPolicy || from > to {
		return nil
	}
	s, err := ac.stream(def)
	if err != nil {
		return err
	}
	var drop []uint64
	cur := s.msgs.Cursor()
	for k, v := cur.Seek(ac.seqKey(max(from, s.c.first))); k != nil && seqOf(k) <= to; k, v = cur.Next() {
		_, m, err := decodeMsgRecord(v)
		if err != nil {
			return err
		}
		held, err := ac.interested(def.name, seqOf(k), string(m.subject))
		if err != nil {
			return err
		}
		if !held {
			drop = append(drop, seqOf(k))
		}
	}
	for _, seq := range drop { // not while the cursor walks the bucket
		if _, err := s.remove(seq); err != nil {
			return err
		}
	}
	return nil
}

// retainNew removes a message just stored in an interest stream that no
// consumer matches.
func (ac *applyCtx) retainNew(s *streamTx, seq uint64, subject []byte) error {
	if s.def.cfg.Retention != InterestPolicy {
		return nil
	}
	held, err := ac.interested(s.def.name, seq, string(subject))
	if err != nil || held {
		return err
	}
	_, err = s.remove(seq)
	return err
}
