package jetstream

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/internal/testcluster"
)

// The leader acknowledges a publish before its state file has committed
// the message (broker.answerEarly). A client that has the acknowledgement
// and then reads through the same node must still find the message: by
// sequence, in the stream's state, and through a consumer.
func TestJetStream_ReadYourWrites_AfterAck(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	_, js := connectJS(t, c.WaitLeader())
	ctx := ctxT(t, 60*time.Second)
	s := mustCreateStream(t, js, jetstream.StreamConfig{Name: "RYW", Subjects: []string{"ryw.>"}, Replicas: 3})
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}

	check := func(seq uint64, want []byte) {
		t.Helper()
		m, err := s.GetMsg(ctx, seq)
		if err != nil || string(m.Data) != string(want) {
			t.Fatalf("seq %d right after its ack: %v %v, want %q", seq, m, err, want)
		}
		info, err := s.Info(ctx)
		if err != nil || info.State.LastSeq < seq {
			t.Fatalf("stream state right after the ack of seq %d: %+v %v", seq, info, err)
		}
	}
	for i := range 200 {
		ack, err := js.Publish(ctx, "ryw.sync", body(i))
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		check(ack.Sequence, body(i))
		if i%20 == 0 {
			// the consumer has nothing else pending: the next message is this one
			msgs, err := cons.FetchNoWait(1 + i)
			if err != nil {
				t.Fatal(err)
			}
			var top uint64
			for m := range msgs.Messages() {
				if md, err := m.Metadata(); err == nil {
					top = max(top, md.Sequence.Stream)
				}
				_ = m.Ack()
			}
			if top != ack.Sequence {
				t.Fatalf("consumer fetch right after the ack of seq %d: up to seq %d", ack.Sequence, top)
			}
		}
	}

	// Async bursts: batches of many messages per Raft entry.
	for round := range 5 {
		var last jetstream.PubAckFuture
		for i := range 300 {
			f, err := js.PublishAsync("ryw.async", body(round*1000+i))
			if err != nil {
				t.Fatal(err)
			}
			last = f
		}
		select {
		case ack := <-last.Ok():
			check(ack.Sequence, body(round*1000+299))
		case err := <-last.Err():
			t.Fatalf("async publish: %v", err)
		case <-ctx.Done():
			t.Fatal("no ack for the last async publish")
		}
	}
}
