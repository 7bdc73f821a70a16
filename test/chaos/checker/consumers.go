package checker

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/flotilla/flotilla/broker"
)

// durableEvents are one durable consumer's deliveries and double acks.
type durableEvents struct {
	delivers, acks []int
}

// durableName names the durable consumer an event belongs to.
func durableName(e *Event) string {
	if e.Consumer != "" {
		return e.Consumer
	}
	return e.Client
}

// checkConsumers runs the durable, ordered and final-state checks.
func (c *checker) checkConsumers() {
	durables := make(map[string]*durableEvents)
	ordered := make(map[string][]int)
	for i := range c.h.ev {
		e := &c.h.ev[i]
		if e.Kind != EventDeliver && e.Kind != EventAck {
			continue
		}
		if c.opts.isOrdered(e.Client) {
			if e.Kind == EventDeliver {
				ordered[e.Client] = append(ordered[e.Client], i)
			}
			continue
		}
		d := durables[durableName(e)]
		if d == nil {
			d = &durableEvents{}
			durables[durableName(e)] = d
		}
		if e.Kind == EventDeliver {
			d.delivers = append(d.delivers, i)
		} else {
			d.acks = append(d.acks, i)
		}
	}
	for _, name := range sortedKeys(durables) {
		c.checkDurable(name, durables[name])
	}
	expect := c.opts.DurableConsumers
	if expect == nil {
		expect = sortedKeys(durables)
	}
	for _, name := range expect {
		d := durables[name]
		if d == nil {
			d = &durableEvents{}
		}
		c.checkDurableComplete(name, d)
	}
	clients := c.opts.OrderedConsumers
	if clients == nil {
		clients = sortedKeys(ordered)
	}
	for _, client := range clients {
		c.checkOrdered(client, ordered[client])
	}
	c.checkConsumerStates(durables)
}

// checkDelivered reports a delivery whose message differs from the stored
// one at its seq.
func (c *checker) checkDelivered(who string, e *Event) {
	p := c.ref.bySeq[e.Seq]
	switch {
	case p == 0:
		c.r.add(KindConsumerMismatch, "%s received seq %d (%q) at %s, but %s holds no seq %d", who, e.Seq, e.Value, at(e.Return), c.ref.name, e.Seq)
	case e.Value != "" && msgValue(&c.ref.msgs[p-1]) != e.Value:
		c.r.add(KindConsumerMismatch, "%s received %q as seq %d at %s, but %s holds %q there", who, e.Value, e.Seq, at(e.Return), c.ref.name, msgValue(&c.ref.msgs[p-1]))
	}
}

// checkDurable reports two kinds of violation.
//
// A message delivered anew after its double ack returned ok: once the ack
// is committed the leader must never deliver it again. A copy received
// after the ack returned is not enough to tell: it may have been sent
// before the ack took hold and been held up on the way (a paused node).
// What proves it new is its consumer sequence: the leader numbers
// deliveries in order, so a copy numbered above the delivery of a message
// first published after the ack returned was made after the ack returned.
//
// Ok double acks of two different deliveries of one message: a consumer
// that processes a message when its double ack returns ok would have
// processed it twice.
func (c *checker) checkDurable(name string, d *durableEvents) {
	acked := make(map[uint64]int) // seq -> the ok ack that returned first
	for _, i := range d.acks {
		e := &c.h.ev[i]
		if e.Outcome != OutcomeOK {
			continue
		}
		j, ok := acked[e.Seq]
		if ok && c.h.ev[j].ConsumerSeq != e.ConsumerSeq {
			a, b := &c.h.ev[j], e
			if b.Return < a.Return {
				a, b = b, a
			}
			c.r.add(KindProcessedTwice, "%s: double acks of two deliveries of seq %d returned ok: consumer seq %d at %s and %d at %s",
				name, e.Seq, a.ConsumerSeq, at(a.Return), b.ConsumerSeq, at(b.Return))
		}
		if !ok || e.Return < c.h.ev[j].Return {
			acked[e.Seq] = i
		}
	}
	newer := c.deliveriesMadeAfter(d)
	for _, i := range d.delivers {
		e := &c.h.ev[i]
		c.checkDelivered(name, e)
		j, ok := acked[e.Seq]
		if !ok || e.Call <= c.h.ev[j].Return {
			continue
		}
		a := &c.h.ev[j]
		if g, made := newer(a.Return); made && e.ConsumerSeq > g.ConsumerSeq {
			c.r.add(KindConsumerBackward, "%s received seq %d again at %s (%s, consumer seq %d) after %s's ack of it returned ok at %s; consumer seq %d went to seq %d, first published after that ack",
				name, e.Seq, at(e.Return), deliveryNote(e), e.ConsumerSeq, a.Client, at(a.Return), g.ConsumerSeq, g.Seq)
		} else {
			c.r.Stats.LateCopies++
		}
	}
}

// deliveriesMadeAfter returns, for a time t, the delivery with the lowest
// consumer sequence among those of messages first published after t:
// each of them was made after t.
func (c *checker) deliveriesMadeAfter(d *durableEvents) func(t int64) (*Event, bool) {
	type made struct {
		after int64 // its message's first publish call
		ev    *Event
	}
	var ms []made
	for _, i := range d.delivers {
		e := &c.h.ev[i]
		if v := c.h.values[e.Value]; v != nil && e.ConsumerSeq > 0 {
			ms = append(ms, made{v.firstCall, e})
		}
	}
	slices.SortFunc(ms, func(a, b made) int { return cmp.Compare(a.after, b.after) })
	// lowest[k]: the lowest consumer sequence among ms[k:]
	lowest := make([]*Event, len(ms))
	for k := len(ms) - 1; k >= 0; k-- {
		lowest[k] = ms[k].ev
		if k+1 < len(ms) && lowest[k+1].ConsumerSeq < lowest[k].ConsumerSeq {
			lowest[k] = lowest[k+1]
		}
	}
	return func(t int64) (*Event, bool) {
		k, _ := slices.BinarySearchFunc(ms, t, func(m made, t int64) int {
			if m.after <= t {
				return -1
			}
			return 1
		})
		if k == len(ms) {
			return nil, false
		}
		return lowest[k], true
	}
}

// deliveryNote describes a delivery's count and node, as far as known.
func deliveryNote(e *Event) string {
	s := fmt.Sprintf("delivery %d", e.Delivered)
	if e.Node != "" {
		s += " via " + e.Node
	}
	return s
}

// checkDurableComplete reports acknowledged messages a durable consumer
// that ran to the end never received.
func (c *checker) checkDurableComplete(name string, d *durableEvents) {
	got := make(map[uint64]bool, len(d.delivers))
	for _, i := range d.delivers {
		got[c.h.ev[i].Seq] = true
	}
	var missing []uint64
	for v, vi := range c.h.values {
		if len(vi.okAttempts(c.h.ev)) == 0 {
			continue
		}
		if seq, ok := c.ref.seqOf(v); ok && !got[seq] {
			missing = append(missing, seq)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		c.r.add(KindConsumerSkip, "durable %s never received %d acked messages: seqs %s", name, len(missing), seqRanges(missing, 10))
	}
}

// checkOrdered reports an ordered consumer that does not read exactly
// 1..N in order.
func (c *checker) checkOrdered(client string, delivers []int) {
	slices.SortStableFunc(delivers, func(a, b int) int { return cmp.Compare(c.h.ev[a].Return, c.h.ev[b].Return) })
	var last uint64
	for _, i := range delivers {
		e := &c.h.ev[i]
		c.checkDelivered(client, e)
		switch {
		case e.Seq <= last:
			c.r.add(KindConsumerBackward, "ordered %s went backwards: seq %d at %s after seq %d", client, e.Seq, at(e.Return), last)
			continue
		case e.Seq > last+1:
			c.r.add(KindConsumerSkip, "ordered %s skipped seqs %d..%d (got seq %d after %d at %s)", client, last+1, e.Seq-1, e.Seq, last, at(e.Return))
		}
		last = e.Seq
	}
	if n := uint64(len(c.ref.msgs)); n > 0 && last < c.ref.msgs[n-1].Seq {
		c.r.add(KindConsumerSkip, "ordered %s never received seqs %d..%d (it stopped at seq %d)", client, last+1, c.ref.msgs[n-1].Seq, last)
	}
}

func describeConsumer(d broker.DumpConsumer) string {
	return fmt.Sprintf("delivered %d/%d, ack floor %d/%d (consumer/stream seq), pending %v",
		d.DeliveredConsumer, d.DeliveredStream, d.AckFloorConsumer, d.AckFloorStream, d.Pending)
}

// checkConsumerStates checks each node's final consumer states against
// themselves, the node's log and the acks in the history, and the
// durables' states across nodes: after quiescing every node applied the
// same commands, so they must agree.
func (c *checker) checkConsumerStates(durables map[string]*durableEvents) {
	nodes := sortedKeys(c.final)
	for _, node := range nodes {
		dump := c.final[node]
		var lastSeq uint64
		if n := len(dump.Messages); n > 0 {
			lastSeq = dump.Messages[n-1].Seq
		}
		for _, name := range sortedKeys(dump.Consumers) {
			c.checkConsumerState(node, name, dump.Consumers[name], lastSeq, durables[name])
		}
	}
	names := make(map[string]bool)
	for name := range durables {
		names[name] = true
	}
	for _, name := range c.opts.DurableConsumers {
		names[name] = true
	}
	for _, name := range sortedKeys(names) {
		var have, lack []string
		for _, node := range nodes {
			if _, ok := c.final[node].Consumers[name]; ok {
				have = append(have, node)
			} else {
				lack = append(lack, node)
			}
		}
		if len(have) == 0 {
			continue
		}
		if len(lack) > 0 {
			c.r.add(KindConsumerState, "consumer %s exists on %v but not on %v", name, have, lack)
		}
		first := c.final[have[0]].Consumers[name]
		for _, node := range have[1:] {
			if d := c.final[node].Consumers[name]; !sameConsumer(first, d) {
				c.r.add(KindConsumerState, "nodes disagree on consumer %s: %s has %s; %s has %s", name, have[0], describeConsumer(first), node, describeConsumer(d))
			}
		}
	}
}

func sameConsumer(a, b broker.DumpConsumer) bool {
	return a.DeliveredConsumer == b.DeliveredConsumer && a.DeliveredStream == b.DeliveredStream &&
		a.AckFloorConsumer == b.AckFloorConsumer && a.AckFloorStream == b.AckFloorStream && slices.Equal(a.Pending, b.Pending)
}

func (c *checker) checkConsumerState(node, name string, d broker.DumpConsumer, lastSeq uint64, ev *durableEvents) {
	bad := func(format string, args ...any) {
		c.r.add(KindConsumerState, "%s: consumer %s (%s): %s", node, name, describeConsumer(d), fmt.Sprintf(format, args...))
	}
	if d.AckFloorStream > d.DeliveredStream || d.AckFloorConsumer > d.DeliveredConsumer {
		bad("ack floor beyond delivered")
	}
	if d.DeliveredStream > lastSeq {
		bad("delivered beyond the last stored seq %d", lastSeq)
	}
	for _, p := range d.Pending {
		if p <= d.AckFloorStream || p > d.DeliveredStream {
			bad("pending seq %d outside (ack floor, delivered]", p)
			break
		}
	}
	if ev == nil {
		return
	}
	for _, i := range ev.acks {
		e := &c.h.ev[i]
		if e.Outcome != OutcomeOK {
			continue
		}
		if _, pending := slices.BinarySearch(d.Pending, e.Seq); pending || e.Seq > d.DeliveredStream {
			bad("%s's ack of seq %d returned ok at %s, yet it is pending or beyond delivered", e.Client, e.Seq, at(e.Return))
		}
	}
}
