package broker

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/flotilla/flotilla/storage"
)

// consumerCreate applies a consumer create and returns its record or
// rejection.
func (h *streamHarness) consumerCreate(stream, name string, action ConsumerAction, cfg ConsumerConfig) (*consumerRecord, *APIError) {
	h.t.Helper()
	js, err := json.Marshal(&cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	switch r := h.apply1(EncodeConsumerCreate(h.now, stream, name, action, js)).(type) {
	case *consumerRecord:
		return r, nil
	case *APIError:
		return nil, r
	default:
		h.t.Fatalf("consumer create result %#v", r)
		return nil, nil
	}
}

func (h *streamHarness) mustConsumer(stream, name string, cfg ConsumerConfig) *consumerRecord {
	h.t.Helper()
	rec, e := h.consumerCreate(stream, name, ActionCreate, cfg)
	if e != nil {
		h.t.Fatalf("create consumer %s: %v", name, e)
	}
	return rec
}

// stored reads a consumer's replicated record and pending set.
func (h *streamHarness) stored(stream, name string) (*consumerRecord, map[uint64]pendingRec) {
	h.t.Helper()
	var rec *consumerRecord
	var pending map[uint64]pendingRec
	err := h.st.View(func(tx *storage.Tx) error {
		var err error
		if rec, err = readConsumer(tx, consumerKey(stream, name)); err != nil || rec == nil {
			return err
		}
		pending, err = readPending(tx, stream, name)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return rec, pending
}

func TestConsumerCreate_StartPositions(t *testing.T) {
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	h.mustPub("s.a", nil, "1") // 1
	h.mustPub("s.b", nil, "2") // 2
	h.advance(time.Second)
	mark := h.now
	h.mustPub("s.a", nil, "3") // 3
	h.mustPub("s.c", nil, "4") // 4
	tests := []struct {
		name      string
		cfg       ConsumerConfig
		delivered uint64 // stream seq before the first delivery
		boundary  uint64
	}{
		{"all", ConsumerConfig{DeliverPolicy: DeliverAll}, 0, 0},
		{"all filtered", ConsumerConfig{DeliverPolicy: DeliverAll, FilterSubject: "s.c"}, 0, 0},
		{"last", ConsumerConfig{DeliverPolicy: DeliverLast}, 3, 0},
		{"last filtered", ConsumerConfig{DeliverPolicy: DeliverLast, FilterSubject: "s.b"}, 1, 0},
		{"new", ConsumerConfig{DeliverPolicy: DeliverNew}, 4, 0},
		{"by seq", ConsumerConfig{DeliverPolicy: DeliverByStartSequence, OptStartSeq: 3}, 2, 0},
		{"by time", ConsumerConfig{DeliverPolicy: DeliverByStartTime, OptStartTime: &mark}, 2, 0},
		{"last per subject", ConsumerConfig{DeliverPolicy: DeliverLastPerSubject, FilterSubject: "s.>"}, 1, 4},
		{"last per subject filtered", ConsumerConfig{DeliverPolicy: DeliverLastPerSubject, FilterSubject: "s.a"}, 2, 4},
		{"nothing matches", ConsumerConfig{DeliverPolicy: DeliverLast, FilterSubject: "s.zzz"}, 4, 0},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "C" + string(rune('a'+i))
			tc.cfg.Durable = name
			rec := h.mustConsumer("S", name, tc.cfg)
			if rec.delivered != (seqPair{0, tc.delivered}) || rec.ackFloor != rec.delivered || rec.lpsBoundary != tc.boundary {
				t.Fatalf("delivered %+v floor %+v boundary %d, want stream %d boundary %d", rec.delivered, rec.ackFloor, rec.lpsBoundary, tc.delivered, tc.boundary)
			}
			got, _ := h.stored("S", name)
			if got.delivered != rec.delivered || got.gen != rec.gen || got.cfg.DeliverPolicy != tc.cfg.DeliverPolicy {
				t.Fatalf("stored %+v, created %+v", got, rec)
			}
		})
	}
}

func TestConsumerCreate_Actions(t *testing.T) {
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "S", Subjects: []string{"s.>"}, MaxConsumers: 2})
	cfg := ConsumerConfig{Durable: "D", AckWait: time.Second}
	if _, e := h.consumerCreate("S", "D", ActionUpdate, cfg); e == nil || e.ErrCode != JSErrConsumerDoesNotExist {
		t.Fatalf("update of a missing consumer: %v", e)
	}
	first := h.mustConsumer("S", "D", cfg)
	again := h.mustConsumer("S", "D", cfg) // identical: success, same incarnation
	if again.gen != first.gen {
		t.Fatalf("identical create made a new incarnation: %d vs %d", again.gen, first.gen)
	}
	changed := cfg
	changed.AckWait = 2 * time.Second
	if _, e := h.consumerCreate("S", "D", ActionCreate, changed); e == nil || e.ErrCode != JSErrConsumerExists {
		t.Fatalf("create with another config: %v", e)
	}
	upd, e := h.consumerCreate("S", "D", ActionCreateOrUpdate, changed)
	if e != nil || upd.cfg.AckWait != 2*time.Second || upd.gen != first.gen {
		t.Fatalf("update: %+v %v", upd, e)
	}
	bad := changed
	bad.DeliverPolicy = DeliverNew
	if _, e := h.consumerCreate("S", "D", ActionUpdate, bad); e == nil || e.ErrCode != JSErrConsumerCreate {
		t.Fatalf("deliver policy update: %v", e)
	}
	h.mustConsumer("S", "E", ConsumerConfig{Durable: "E"})
	if _, e := h.consumerCreate("S", "F", ActionCreate, ConsumerConfig{Durable: "F"}); e == nil || e.ErrCode != JSErrMaxConsumers {
		t.Fatalf("third consumer with max_consumers 2: %v", e)
	}
	if _, e := h.consumerCreate("NOPE", "F", ActionCreate, ConsumerConfig{Durable: "F"}); e == nil || e.ErrCode != JSErrStreamNotFound {
		t.Fatalf("consumer on a missing stream: %v", e)
	}
}

func TestConsumerOps_PendingAndAckFloor(t *testing.T) {
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	for range 5 {
		h.mustPub("s.a", nil, "x")
	}
	rec := h.mustConsumer("S", "D", ConsumerConfig{Durable: "D"})
	op := func(kind consumerOpKind, sseq, cseq, dc uint64) consumerOp {
		return consumerOp{kind: kind, stream: "S", name: "D", gen: rec.gen, streamSeq: sseq, consSeq: cseq, deliveries: dc, ts: 7}
	}
	h.apply1(encodeConsumerOps([]consumerOp{
		op(opDeliver, 1, 1, 1), op(opDeliver, 2, 2, 1), op(opDeliver, 3, 3, 1),
		op(opAck, 1, 0, 0),
	}))
	got, pending := h.stored("S", "D")
	if got.delivered != (seqPair{3, 3}) || got.ackFloor != (seqPair{1, 1}) || len(pending) != 2 {
		t.Fatalf("after 3 deliveries and ack 1: delivered %+v floor %+v pending %v", got.delivered, got.ackFloor, pending)
	}
	if p := pending[2]; p != (pendingRec{cseq: 2, deliveries: 1, ts: 7}) {
		t.Fatalf("pending 2: %+v", p)
	}
	// Redelivery of 2 (new consumer seq 4), ack of 3, a stale op from
	// another incarnation, and an ack of an unknown sequence.
	h.apply1(encodeConsumerOps([]consumerOp{
		op(opDeliver, 2, 4, 2), op(opAck, 3, 0, 0),
		{kind: opAck, stream: "S", name: "D", gen: rec.gen + 100, streamSeq: 2},
		op(opAck, 99, 0, 0),
	}))
	got, pending = h.stored("S", "D")
	if got.delivered != (seqPair{4, 3}) || got.ackFloor != (seqPair{3, 1}) || len(pending) != 1 || pending[2].deliveries != 2 {
		t.Fatalf("after redelivery: delivered %+v floor %+v pending %v", got.delivered, got.ackFloor, pending)
	}
	h.apply1(encodeConsumerOps([]consumerOp{op(opDrop, 2, 0, 0)}))
	got, pending = h.stored("S", "D")
	if got.ackFloor != got.delivered || len(pending) != 0 {
		t.Fatalf("after drop: floor %+v delivered %+v pending %v", got.ackFloor, got.delivered, pending)
	}
	if info, _ := h.f.StreamInfo("S"); info.State.Msgs != 5 || info.State.Consumers != 1 {
		t.Fatalf("limits stream lost messages on ack: %+v", info.State)
	}
}

// An explicit ack records which delivery settled the message; the
// consumer's ackedKeep highest records are kept, and deleting the consumer
// deletes them.
func TestConsumerOps_AckedRecords(t *testing.T) {
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	for range 3 {
		h.mustPub("s.a", nil, "x")
	}
	rec := h.mustConsumer("S", "D", ConsumerConfig{Durable: "D", AckPolicy: AckExplicit})
	op := func(kind consumerOpKind, sseq, cseq uint64) consumerOp {
		return consumerOp{kind: kind, stream: "S", name: "D", gen: rec.gen, streamSeq: sseq, consSeq: cseq, deliveries: 1}
	}
	acked := func() map[uint64]uint64 {
		var out map[uint64]uint64
		if err := h.st.View(func(tx *storage.Tx) error {
			var err error
			out, err = readAcked(tx, "S", "D")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	h.apply1(encodeConsumerOps([]consumerOp{
		op(opDeliver, 1, 1), op(opDeliver, 2, 2), op(opDeliver, 3, 3),
		op(opDeliver, 1, 4), // a redelivery of 1
		op(opAck, 1, 1),     // settled by its first delivery
		op(opAck, 1, 4),     // the second ack changes nothing
		op(opAck, 2, 0),     // an ack that names no delivery (ack_policy all)
		op(opAck, 3, 3),
	}))
	if got := acked(); len(got) != 2 || got[1] != 1 || got[3] != 3 {
		t.Fatalf("acked records: %v, want 1->1 and 3->3", got)
	}
	// Up to ackedKeep+ackedTrim records are kept; one more, and the lowest
	// go, down to ackedKeep. The acks come in two entries, so the second
	// starts with the records the first left.
	ackRange := func(from, to uint64) {
		var ops []consumerOp
		for seq := from; seq < to; seq++ {
			ops = append(ops, op(opDeliver, seq, seq), op(opAck, seq, seq))
		}
		h.apply1(encodeConsumerOps(ops))
	}
	last := uint64(10 + ackedKeep + ackedTrim - 2) // 2 + (last-10) records = ackedKeep+ackedTrim
	ackRange(10, last)
	if got := acked(); len(got) != ackedKeep+ackedTrim || got[1] != 1 || got[3] != 3 {
		t.Fatalf("at the limit: %d records (1->%d, 3->%d), want %d, none dropped", len(got), got[1], got[3], ackedKeep+ackedTrim)
	}
	ackRange(last, last+1)
	got := acked()
	lowest := last + 1 - ackedKeep
	if len(got) != ackedKeep || got[1] != 0 || got[3] != 0 || got[lowest-1] != 0 || got[lowest] != lowest || got[last] != last {
		t.Fatalf("over the limit: %d records (1->%d, 3->%d, %d->%d, %d->%d), want the %d highest",
			len(got), got[1], got[3], lowest, got[lowest], last, got[last], ackedKeep)
	}
	if err := h.st.View(func(tx *storage.Tx) error {
		if n := tx.Bucket(consumerAckedBucket("S", "D")).Sequence(); n != ackedKeep {
			return fmt.Errorf("bucket sequence %d, want %d", n, ackedKeep)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.apply1(EncodeConsumerDelete("S", "D"))
	h.mustConsumer("S", "D", ConsumerConfig{Durable: "D", AckPolicy: AckExplicit})
	if got := acked(); len(got) != 0 {
		t.Fatalf("a re-created consumer has the old acked records: %v", got)
	}
}

func TestConsumerOps_WorkQueueRemovesAcked(t *testing.T) {
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "Q", Subjects: []string{"q.>"}, Retention: WorkQueuePolicy})
	for range 3 {
		h.mustPub("q.a", nil, "x")
	}
	rec := h.mustConsumer("Q", "W", ConsumerConfig{Durable: "W"})
	if _, e := h.consumerCreate("Q", "X", ActionCreate, ConsumerConfig{Durable: "X"}); e == nil {
		t.Fatal("second unfiltered consumer on a workqueue stream accepted")
	}
	op := func(kind consumerOpKind, sseq, cseq uint64) consumerOp {
		return consumerOp{kind: kind, stream: "Q", name: "W", gen: rec.gen, streamSeq: sseq, consSeq: cseq, deliveries: 1}
	}
	h.apply1(encodeConsumerOps([]consumerOp{op(opDeliver, 1, 1), op(opDeliver, 2, 2), op(opAck, 2, 0), op(opDrop, 1, 0)}))
	info, _ := h.f.StreamInfo("Q")
	if info.State.Msgs != 2 || info.State.FirstSeq != 1 {
		t.Fatalf("workqueue after ack of 2 and drop of 1: %+v", info.State)
	}
}

func TestConsumerDelete_AndWithStream(t *testing.T) {
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	h.mustPub("s.a", nil, "x")
	rec := h.mustConsumer("S", "D", ConsumerConfig{Durable: "D"})
	h.apply1(encodeConsumerOps([]consumerOp{{kind: opDeliver, stream: "S", name: "D", gen: rec.gen, streamSeq: 1, consSeq: 1, deliveries: 1}}))
	if res := h.apply1(EncodeConsumerDelete("S", "D")); res != nil {
		t.Fatalf("delete: %#v", res)
	}
	if e, _ := h.apply1(EncodeConsumerDelete("S", "D")).(*APIError); e == nil || e.ErrCode != JSErrConsumerNotFound {
		t.Fatalf("second delete: %v", e)
	}
	// Re-created under the same name: a new incarnation with no pending.
	again := h.mustConsumer("S", "D", ConsumerConfig{Durable: "D"})
	if again.gen == rec.gen {
		t.Fatal("re-created consumer kept the old generation")
	}
	if _, pending := h.stored("S", "D"); len(pending) != 0 {
		t.Fatalf("re-created consumer has pending %v", pending)
	}
	h.mustConsumer("S", "E", ConsumerConfig{Durable: "E"})
	h.apply1(EncodeStreamDelete("S"))
	if got, _ := h.stored("S", "D"); got != nil {
		t.Fatal("consumer survived its stream")
	}
	h.mustCreate(StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	if info, _ := h.f.StreamInfo("S"); info.State.Consumers != 0 {
		t.Fatalf("re-created stream has %d consumers", info.State.Consumers)
	}
}

func TestConsumerOps_InterestRetention(t *testing.T) {
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "I", Subjects: []string{"i.>"}, Retention: InterestPolicy})
	h.mustPub("i.a", nil, "nobody") // 1: no consumer: dropped at once
	if info, _ := h.f.StreamInfo("I"); info.State.Msgs != 0 || info.State.LastSeq != 1 {
		t.Fatalf("message without interest kept: %+v", info.State)
	}
	a := h.mustConsumer("I", "A", ConsumerConfig{Durable: "A"})
	b := h.mustConsumer("I", "B", ConsumerConfig{Durable: "B", FilterSubject: "i.b"})
	n := h.mustConsumer("I", "N", ConsumerConfig{Durable: "N", AckPolicy: AckNone, FilterSubject: "i.a"})
	h.mustPub("i.a", nil, "x") // 2: A and N
	h.mustPub("i.b", nil, "y") // 3: A and B
	msgs := func() uint64 { info, _ := h.f.StreamInfo("I"); return info.State.Msgs }
	op := func(rec *consumerRecord, kind consumerOpKind, sseq, cseq uint64) consumerOp {
		return consumerOp{kind: kind, stream: "I", name: rec.name, gen: rec.gen, streamSeq: sseq, consSeq: cseq, deliveries: 1}
	}
	h.apply1(encodeConsumerOps([]consumerOp{op(a, opDeliver, 2, 1), op(a, opDeliver, 3, 2), op(a, opAck, 2, 0), op(a, opAck, 3, 0)}))
	if got := msgs(); got != 2 {
		t.Fatalf("after A acked both: %d messages, want 2 (N and B still hold them)", got)
	}
	h.apply1(encodeConsumerOps([]consumerOp{op(n, opSkip, 2, 1)}))
	if got := msgs(); got != 1 {
		t.Fatalf("after N delivered 2: %d messages, want 1", got)
	}
	// Deleting B, which never read 3, releases it.
	h.apply1(EncodeConsumerDelete("I", "B"))
	_ = b
	if got := msgs(); got != 0 {
		t.Fatalf("after B was deleted: %d messages, want 0", got)
	}
}
