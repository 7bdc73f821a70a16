package broker

import (
	"testing"
	"time"
)

// An ack is confirmed only when this leader's state includes the delivery
// it refers to: a delivery made by a previous leader that died before
// recording it is unknown, and confirming its ack would promise an ack
// that never took hold (the message is delivered again).
func TestEngine_AckConfirmsOnlyKnownDeliveries(t *testing.T) {
	now := time.Now()
	rec := &consumerRecord{stream: "S", name: "C", gen: 1, cfg: ConsumerConfig{AckPolicy: AckExplicit, AckWait: time.Minute},
		delivered: seqPair{cons: 5, stream: 10}, ackFloor: seqPair{cons: 3, stream: 8}}
	c := newConsumer(rec, map[uint64]pendingRec{9: {cseq: 4, deliveries: 1}, 10: {cseq: 5, deliveries: 1}}, nil, now)
	e := &engine{cons: map[string]*consumer{c.key(): c}}
	ack := func(sseq, cseq uint64) string {
		return string(AppendAckSubject(nil, "S", "C", 1, sseq, cseq, 1, 0))
	}
	tests := []struct {
		name      string
		subject   string
		confirmed bool
		ops       int // ops recorded by this ack
	}{
		{"pending", ack(9, 4), true, 1},
		{"settled before, by an ack this leader has no record of", ack(7, 2), false, 0},
		{"acked again (lost reply)", ack(9, 4), true, 0},
		{"beyond the delivered position", ack(11, 6), false, 0},
		{"unknown consumer sequence", ack(10, 9), true, 1}, // 10 is pending: known by its stream seq
		{"not an ack subject", "$JS.ACK.nope", true, 0},
		{"no such consumer", string(AppendAckSubject(nil, "S", "X", 1, 9, 4, 1, 0)), false, 0},
	}
	for _, tc := range tests {
		before := len(e.ops)
		_, ok := e.ackLocked(&ackItem{subject: tc.subject, reply: "_INBOX.x", payload: []byte("+ACK")}, now)
		if ok != tc.confirmed || len(e.ops)-before != tc.ops {
			t.Errorf("%s: confirmed %v with %d ops, want %v with %d", tc.name, ok, len(e.ops)-before, tc.confirmed, tc.ops)
		}
	}
	if len(c.pending) != 0 {
		t.Fatalf("pending after acks: %v", c.pending)
	}

	// A message delivered twice. The first ack of any of its deliveries
	// settles it and is the only one confirmed, then and after a leader
	// change (the record of which delivery settled it is replicated): a
	// double-acking consumer processes it once, and one slower than
	// ack_wait still makes progress.
	c.pending[12] = &pendingState{pendingRec: pendingRec{cseq: 8, deliveries: 2}}
	c.delivered = seqPair{cons: 8, stream: 12}
	for _, tc := range []struct {
		name      string
		cseq      uint64
		payload   string
		confirmed bool
	}{
		{"a NAK of the first, superseded, delivery", 6, "-NAK", false},
		{"the first delivery", 6, "+ACK", true},
		{"the latest delivery, after the first was acked", 8, "+ACK", false},
		{"the first delivery again (lost reply)", 6, "+ACK", true},
	} {
		if _, ok := e.ackLocked(&ackItem{subject: ack(12, tc.cseq), reply: "_INBOX.y", payload: []byte(tc.payload)}, now); ok != tc.confirmed {
			t.Errorf("%s: confirmed %v, want %v", tc.name, ok, tc.confirmed)
		}
		if tc.payload == "-NAK" && (c.pending[12] == nil || c.pending[12].queued) {
			t.Errorf("%s: changed the pending message: %+v", tc.name, c.pending[12])
		}
	}
	if last := e.ops[len(e.ops)-1]; last.kind != opAck || last.streamSeq != 12 || last.consSeq != 6 {
		t.Fatalf("the ack op does not name the delivery that settled the message: %+v", last)
	}
	// A new leader loads the replicated records.
	rec2 := *rec
	rec2.delivered = seqPair{cons: 8, stream: 12}
	c2 := newConsumer(&rec2, nil, map[uint64]uint64{12: 6}, now)
	e2 := &engine{cons: map[string]*consumer{c2.key(): c2}}
	for cseq, want := range map[uint64]bool{6: true, 8: false} {
		if _, ok := e2.ackLocked(&ackItem{subject: ack(12, cseq), reply: "_INBOX.z", payload: []byte("+ACK")}, now); ok != want {
			t.Errorf("new leader, ack of delivery %d: confirmed %v, want %v", cseq, ok, want)
		}
	}
}

// The leader's memory of which delivery settled a message is cut to the
// highest ackedKeep records once it holds twice that many.
func TestConsumer_RememberAckBounded(t *testing.T) {
	c := &consumer{}
	for seq := uint64(1); seq <= 2*ackedKeep+1; seq++ {
		c.rememberAck(AckRef{StreamSeq: seq, ConsumerSeq: seq})
	}
	if len(c.ackedBy) != ackedKeep || c.ackedBy[ackedKeep+1] != 0 || c.ackedBy[ackedKeep+2] != ackedKeep+2 {
		t.Fatalf("%d records, lowest kept %d: want the %d highest", len(c.ackedBy), c.ackedBy[ackedKeep+2], ackedKeep)
	}
}

// Only an ack with a reply, the kind a client retries, leaves a record of
// the delivery that settled the message; a plain ack settles it all the
// same, and its op names no delivery, so the apply records nothing.
func TestEngine_PlainAckLeavesNoRecord(t *testing.T) {
	now := time.Now()
	rec := &consumerRecord{stream: "S", name: "C", gen: 1, cfg: ConsumerConfig{AckPolicy: AckExplicit, AckWait: time.Minute},
		delivered: seqPair{cons: 2, stream: 2}}
	c := newConsumer(rec, map[uint64]pendingRec{1: {cseq: 1, deliveries: 1}, 2: {cseq: 2, deliveries: 1}}, nil, now)
	e := &engine{cons: map[string]*consumer{c.key(): c}}
	ack := func(seq uint64) string { return string(AppendAckSubject(nil, "S", "C", 1, seq, seq, 1, 0)) }
	e.ackLocked(&ackItem{subject: ack(1), payload: []byte("+ACK")}, now)
	e.ackLocked(&ackItem{subject: ack(2), reply: "_INBOX.x", payload: []byte("+ACK")}, now)
	if len(c.pending) != 0 || len(e.ops) != 2 {
		t.Fatalf("pending %v, %d ops: want both settled by one op each", c.pending, len(e.ops))
	}
	if e.ops[0].consSeq != 0 || e.ops[1].consSeq != 2 {
		t.Errorf("ops name deliveries %d and %d, want 0 (plain ack) and 2 (double ack)", e.ops[0].consSeq, e.ops[1].consSeq)
	}
	if _, ok := c.ackedBy[1]; ok || c.ackedBy[2] != 2 {
		t.Errorf("remembered %v, want only 2->2", c.ackedBy)
	}
}
