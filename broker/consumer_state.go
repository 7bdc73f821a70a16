package broker

import (
	"slices"
	"time"
)

// consumer is the delivery engine's live view of one consumer on the
// leader: the replicated record plus what only the leader keeps (waiting
// pull requests, redelivery timers, flow control). Guarded by engine.mu.
type consumer struct {
	consumerRecord
	pending   map[uint64]*pendingState // by stream sequence
	redeliver []uint64                 // stream sequences due for redelivery, in order
	waiting   []*pullReq               // FIFO
	lps       []uint64                 // last_per_subject sequences still to deliver
	np        numPendingCache
	active    time.Time         // last pull, ack or push interest (inactive_threshold)
	deleting  bool              // an inactivity delete was proposed
	acked     bool              // acked since ackFloor was computed
	ackedBy   map[uint64]uint64 // stream seq -> consumer seq of the delivery whose ack settled it

	// Ack none with mem_storage: when the delivered position was last
	// recorded, and whether it moved since (recordProgress).
	progressAt   time.Time
	progressHeld bool

	// replay_policy original: when the last new message was sent and its
	// store time; the next one waits for the same gap.
	replayAt, replayTime time.Time

	// Push consumers.
	lastSent  time.Time // last message or heartbeat sent (idle heartbeats)
	fcSubject string    // outstanding flow control request, "" if none
	fcMsgs    int       // messages sent since the last flow control request
	fcBytes   int
}

// pendingState is a pending message with its redelivery deadline (the
// deadline is the leader's; a new leader starts the clock again).
type pendingState struct {
	pendingRec
	deadline time.Time
	queued   bool // in the redeliver queue
}

// pullReq is one waiting CONSUMER.MSG.NEXT request.
type pullReq struct {
	reply     string
	batch     int // messages still wanted
	maxBytes  int // 0: no byte budget
	bytesLeft int
	noWait    bool
	expires   time.Time // zero: never
	hb        time.Duration
	lastSent  time.Time // last message or heartbeat sent to it
	sent      int
}

// numPendingCache remembers the count of matching messages after a
// sequence for the stream counters it was computed with, so the count is
// updated incrementally as the consumer advances and the stream grows.
type numPendingCache struct {
	valid             bool
	at                uint64
	first, last, msgs uint64
	count             uint64
}

func newConsumer(rec *consumerRecord, pending map[uint64]pendingRec, acked map[uint64]uint64, now time.Time) *consumer {
	c := &consumer{consumerRecord: *rec, pending: make(map[uint64]*pendingState, len(pending)), active: now, ackedBy: acked}
	for seq, p := range pending {
		// The deadline counts from now: a new leader gives every
		// outstanding message a full ack wait.
		c.pending[seq] = &pendingState{pendingRec: p, deadline: now.Add(c.ackWait(p.deliveries))}
	}
	return c
}

// ackWait is the ack wait after the n-th delivery (backoff overrides it).
func (c *consumer) ackWait(n uint64) time.Duration {
	if b := c.cfg.BackOff; len(b) > 0 {
		i := int(min(n, uint64(len(b)))) - 1
		return b[max(i, 0)]
	}
	if c.cfg.AckWait > 0 {
		return c.cfg.AckWait
	}
	return 30 * time.Second
}

// paused reports whether pause_until holds deliveries back (requests
// still wait, expire and get heartbeats).
func (c *consumer) paused(now time.Time) bool {
	return c.cfg.PauseUntil != nil && now.Before(*c.cfg.PauseUntil)
}

func (c *consumer) key() string { return c.stream + "/" + c.name }

// canDeliverMore reports whether max_ack_pending leaves room for a new
// message (redeliveries are already pending and always may go).
func (c *consumer) canDeliverMore() bool {
	if c.cfg.AckPolicy == AckNone || c.cfg.MaxAckPending <= 0 {
		return true
	}
	return len(c.pending) < c.cfg.MaxAckPending
}

func (c *consumer) redelivered() int {
	n := 0
	for _, p := range c.pending {
		if p.deliveries > 1 {
			n++
		}
	}
	return n
}

// queueRedelivery puts seq in the redeliver queue; first puts it at the
// front (a NAK is redelivered before anything else).
func (c *consumer) queueRedelivery(seq uint64, first bool) {
	p := c.pending[seq]
	if p == nil || p.queued {
		return
	}
	p.queued = true
	if first {
		c.redeliver = slices.Insert(c.redeliver, 0, seq)
		return
	}
	c.redeliver = append(c.redeliver, seq)
}

// removePending forgets a pending message (acked, terminated, gone).
func (c *consumer) removePending(seq uint64) bool {
	p := c.pending[seq]
	if p == nil {
		return false
	}
	delete(c.pending, seq)
	c.acked = true
	if p.queued {
		if i := slices.Index(c.redeliver, seq); i >= 0 {
			c.redeliver = slices.Delete(c.redeliver, i, i+1)
		}
	}
	return true
}

// ackFloorNow brings the ack floor up to date after acks (computed
// lazily: finding the oldest pending message is a scan).
func (c *consumer) ackFloorNow() seqPair {
	if !c.acked {
		return c.ackFloor
	}
	c.acked = false
	var minSeq uint64
	for seq := range c.pending {
		if minSeq == 0 || seq < minSeq {
			minSeq = seq
		}
	}
	var minCseq uint64
	if minSeq > 0 {
		minCseq = c.pending[minSeq].cseq
	}
	c.ackFloor = advanceAckFloor(c.ackFloor, c.delivered, minSeq, minCseq)
	return c.ackFloor
}

// numPending returns the count of messages after the delivered position
// that the consumer has still to see, using and refreshing its cache.
func (c *consumer) numPending(r msgReader, sc *streamCounters) uint64 {
	filters := c.cfg.Filters()
	at := c.delivered.stream
	var base uint64
	if len(c.lps) > 0 {
		// In the last-per-subject phase: the remaining subjects, then
		// everything after the boundary.
		base = uint64(len(c.lps))
		at = max(at, c.lpsBoundary)
	}
	np := &c.np
	switch {
	case len(filters) == 0 && sc.dense():
		// Unfiltered over a stream without holes: countAfter is O(1),
		// cheaper than adjusting by counting the ranges (a cursor walk
		// for every delivered message).
		np.count = r.countAfter(sc, filters, at)
	case np.valid && np.first == sc.first && np.msgs <= sc.msgs && sc.msgs-np.msgs == sc.last-np.last && at >= np.at:
		// Only appended to since, and we only moved forward: adjust.
		if sc.last > np.last {
			np.count += r.countRange(filters, np.last, sc.last)
		}
		if at > np.at {
			np.count -= min(np.count, r.countRange(filters, np.at, at))
		}
	default:
		np.count = r.countAfter(sc, filters, at)
	}
	np.valid, np.at, np.first, np.last, np.msgs = true, at, sc.first, sc.last, sc.msgs
	return base + np.count
}

// countRange counts the messages in (from, to] that pass filters.
func (r msgReader) countRange(filters []string, from, to uint64) uint64 {
	if to <= from {
		return 0
	}
	var n uint64
	cur := r.msgs.Cursor()
	for k, v := cur.Seek(seqKey(nil, from+1)); k != nil && seqOf(k) <= to; k, v = cur.Next() {
		if len(filters) == 0 {
			n++
			continue
		}
		if _, m, err := decodeMsgRecord(v); err == nil && matchesFilters(filters, string(m.subject)) {
			n++
		}
	}
	return n
}
