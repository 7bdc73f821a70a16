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
	c := newConsumer(rec, map[uint64]pendingRec{9: {cseq: 4, deliveries: 1}, 10: {cseq: 5, deliveries: 1}}, now)
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
		{"acked before (at or below delivered)", ack(7, 2), true, 0},
		{"acked again", ack(9, 4), true, 0},
		{"beyond the delivered position", ack(11, 6), false, 0},
		{"unknown consumer sequence", ack(10, 9), true, 1}, // 10 is pending: known by its stream seq
		{"not an ack subject", "$JS.ACK.nope", true, 0},
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

	// A message delivered twice: only the latest delivery's ack counts,
	// before and after it, so a double-acking consumer processes it once.
	c.pending[12] = &pendingState{pendingRec: pendingRec{cseq: 8, deliveries: 2}}
	c.delivered = seqPair{cons: 8, stream: 12}
	for _, tc := range []struct {
		name      string
		cseq      uint64
		confirmed bool
	}{
		{"the first delivery, superseded", 6, false},
		{"the latest delivery", 8, true},
		{"the latest delivery again (lost reply)", 8, true},
		{"the first delivery after the latest was acked", 6, false},
	} {
		if _, ok := e.ackLocked(&ackItem{subject: ack(12, tc.cseq), reply: "_INBOX.y", payload: []byte("+ACK")}, now); ok != tc.confirmed {
			t.Errorf("%s: confirmed %v, want %v", tc.name, ok, tc.confirmed)
		}
	}
}
