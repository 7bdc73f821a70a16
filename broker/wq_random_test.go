package broker

import (
	"math/rand/v2"
	"testing"
)

// TestConsumerOps_WorkQueueRandomAcks acks a work queue's messages in
// random order, many per Raft entry, while more are published: every ack
// unlinks a message from the middle of its subject's chain, with earlier
// unlinks of the same transaction leaving emptied leaves behind in the
// chain bucket. The chain must stay consistent (a broken one panics the
// apply) and the stream must end empty.
func TestConsumerOps_WorkQueueRandomAcks(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		h := newTestStreamFSM(t)
		h.mustCreate(StreamConfig{Name: "Q", Subjects: []string{"q.>"}, Retention: WorkQueuePolicy})
		rec := h.mustConsumer("Q", "W", ConsumerConfig{Durable: "W"})
		rng := rand.New(rand.NewPCG(seed, 0))
		subjects := []string{"q.a", "q.a", "q.a", "q.b"} // mostly one subject
		var published, cseq uint64
		var outstanding []uint64
		publish := func(n int) {
			msgs := make([]PublishMsg, n)
			for i := range msgs {
				msgs[i] = PublishMsg{Subject: subjects[rng.IntN(len(subjects))], Data: []byte("x")}
			}
			for _, a := range h.publish(msgs...) {
				if a.Error != nil {
					t.Fatalf("publish: %v", a.Error)
				}
			}
			var ops []consumerOp
			for range n {
				published++
				cseq++
				ops = append(ops, consumerOp{kind: opDeliver, stream: "Q", name: "W", gen: rec.gen, streamSeq: published, consSeq: cseq, deliveries: 1})
				outstanding = append(outstanding, published)
			}
			h.apply1(encodeConsumerOps(ops))
		}
		ackSome := func(n int) {
			rng.Shuffle(len(outstanding), func(i, j int) { outstanding[i], outstanding[j] = outstanding[j], outstanding[i] })
			n = min(n, len(outstanding))
			var ops []consumerOp
			for _, seq := range outstanding[:n] {
				ops = append(ops, consumerOp{kind: opAck, stream: "Q", name: "W", gen: rec.gen, streamSeq: seq})
			}
			outstanding = outstanding[n:]
			h.apply1(encodeConsumerOps(ops))
		}
		for range 40 {
			publish(200 + rng.IntN(300))
			ackSome(100 + rng.IntN(500))
		}
		ackSome(len(outstanding))
		if st := h.state("Q"); st.Msgs != 0 {
			t.Fatalf("seed %d: %d messages left after every one was acked: %+v", seed, st.Msgs, st)
		}
	}
}
