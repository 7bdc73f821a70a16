package consumers

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestConsumers_DeliverPolicies creates one consumer per deliver policy on
// the stream
//
//	seq 1 dp.a, 2 dp.b, 3 dp.c, 4 dp.a | (time noted) | 5 dp.b, 6 dp.a
//
// and checks where each starts (num_pending, the delivered position before
// any delivery, what it delivers), and that each then receives a message
// published after it was created.
func TestConsumers_DeliverPolicies(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "DP", Subjects: []string{"dp.*"}, Storage: jetstream.FileStorage})
	for i, subj := range []string{"dp.a", "dp.b", "dp.c", "dp.a"} {
		mustPublish(t, pjs, subj, body(i+1))
	}
	// Every store time so far is before this, every later one after it.
	noted := time.Now()
	for i, subj := range []string{"dp.b", "dp.a"} {
		mustPublish(t, pjs, subj, body(i+5))
	}

	cases := []struct {
		name string
		cfg  jetstream.ConsumerConfig
		// pending is num_pending at creation, startMinus1 the delivered
		// stream seq before any delivery, want the stream seqs delivered.
		pending     uint64
		startMinus1 uint64
		want        []uint64
	}{
		{"all", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}, 6, 0, []uint64{1, 2, 3, 4, 5, 6}},
		{"last", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPolicy}, 1, 5, []uint64{6}},
		{"new", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}, 0, 6, nil},
		{"by_start_sequence", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 3}, 4, 2, []uint64{3, 4, 5, 6}},
		{"by_start_time", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &noted}, 2, 4, []uint64{5, 6}},
		// The newest of each subject, in stream order: dp.c 3, dp.b 5, dp.a
		// 6. (nats-server requires a filter with last_per_subject, 10094.)
		{"last_per_subject", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, FilterSubject: "dp.*"}, 3, 2, []uint64{3, 5, 6}},
		// last with a filter: the last message of that subject.
		{"last_filtered", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPolicy, FilterSubject: "dp.b"}, 1, 4, []uint64{5}},
	}
	consumers := make([]jetstream.Consumer, len(cases))
	for i, tc := range cases {
		tc.cfg.Durable = tc.name
		tc.cfg.AckPolicy = jetstream.AckExplicitPolicy
		c := mustCreateConsumer(t, js, "DP", tc.cfg)
		consumers[i] = c
		info := mustInfo(t, c)
		if info.NumPending != tc.pending || info.Delivered.Consumer != 0 || info.Delivered.Stream != tc.startMinus1 || info.NumAckPending != 0 {
			t.Errorf("%s at creation: %v, want num_pending %d and delivered{c:0 s:%d}", tc.name, stateOf(info), tc.pending, tc.startMinus1)
		}
		got := streamSeqs(t, fetchNoWait(t, c, 10))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s delivered stream seqs %v, want %v", tc.name, got, tc.want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Every policy goes on with messages stored after its start (the
	// filtered one only with its own subject).
	seq7 := mustPublish(t, pjs, "dp.b", body(7))
	for i, tc := range cases {
		m := fetchOne(t, consumers[i], 10*time.Second)
		if md := meta(t, m); md.Sequence.Stream != seq7 || md.Sequence.Consumer != uint64(len(tc.want)+1) || md.NumPending != 0 {
			t.Errorf("%s: new message stream seq %d consumer seq %d pending %d, want %d, %d, 0",
				tc.name, md.Sequence.Stream, md.Sequence.Consumer, md.NumPending, seq7, len(tc.want)+1)
		}
	}
}

// TestConsumers_InfoAfterAcks checks delivered, ack_floor, num_ack_pending
// and num_pending exactly as messages are delivered and acked out of order,
// on a filtered consumer whose consumer and stream sequences differ.
func TestConsumers_InfoAfterAcks(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "INFO", Subjects: []string{"info.*"}, Storage: jetstream.FileStorage})
	// Stream: 1 x, 2 y, 3 x, 4 y, 5 x, 6 y, 7 x, 8 y; the consumer sees x:
	// stream seqs 1, 3, 5, 7 as consumer seqs 1..4.
	for i := range 8 {
		subj := "info.x"
		if i%2 == 1 {
			subj = "info.y"
		}
		mustPublish(t, pjs, subj, body(i))
	}
	c := mustCreateConsumer(t, js, "INFO", jetstream.ConsumerConfig{Durable: "X", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "info.x"})
	assertState(t, c, state{Pending: 4})

	got := fetch(t, c, 3, jetstream.FetchMaxWait(scaled(10*time.Second)))
	if seqs := streamSeqs(t, got); !slices.Equal(seqs, []uint64{1, 3, 5}) {
		t.Fatalf("fetched stream seqs %v", seqs)
	}
	assertState(t, c, state{Delivered: [2]uint64{3, 5}, AckPending: 3, Pending: 1})

	// Acking the second leaves the floor at 0: the first is still pending.
	mustDoubleAck(t, got[1])
	assertState(t, c, state{Delivered: [2]uint64{3, 5}, AckPending: 2, Pending: 1})
	// Acking the first moves the floor up to just below the first message
	// still pending (consumer seq 3, stream seq 5), so the stream floor
	// also covers stream seq 4, which this consumer never sees.
	mustDoubleAck(t, got[0])
	assertState(t, c, state{Delivered: [2]uint64{3, 5}, AckFloor: [2]uint64{2, 4}, AckPending: 1, Pending: 1})
	mustDoubleAck(t, got[2])
	assertState(t, c, state{Delivered: [2]uint64{3, 5}, AckFloor: [2]uint64{3, 5}, Pending: 1})

	last := fetchOne(t, c, 10*time.Second)
	mustDoubleAck(t, last)
	assertState(t, c, state{Delivered: [2]uint64{4, 7}, AckFloor: [2]uint64{4, 7}})
	// A message on the other subject changes nothing for this consumer.
	mustPublish(t, pjs, "info.y", body(9))
	assertState(t, c, state{Delivered: [2]uint64{4, 7}, AckFloor: [2]uint64{4, 7}})
	mustPublish(t, pjs, "info.x", body(10))
	assertState(t, c, state{Delivered: [2]uint64{4, 7}, AckFloor: [2]uint64{4, 7}, Pending: 1})
}
