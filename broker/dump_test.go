package broker

import (
	"slices"
	"testing"
)

func TestReadState(t *testing.T) {
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	h.mustPub("s.a", hdr("Nats-Msg-Id", "one"), "1")
	h.mustPub("s.b", nil, "2")
	rec := h.mustConsumer("S", "D", ConsumerConfig{Durable: "D"})
	h.apply1(encodeConsumerOps([]consumerOp{{kind: opDeliver, stream: "S", name: "D", gen: rec.gen, streamSeq: 1, consSeq: 1, deliveries: 1}}))
	path := h.st.Path()
	if err := h.st.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := ReadState(path, "S")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Messages) != 2 || d.Messages[0].Seq != 1 || d.Messages[0].Subject != "s.a" || d.Messages[0].MsgID != "one" || string(d.Messages[1].Data) != "2" {
		t.Fatalf("messages %+v", d.Messages)
	}
	c := d.Consumers["D"]
	if c.DeliveredConsumer != 1 || c.DeliveredStream != 1 || !slices.Equal(c.Pending, []uint64{1}) {
		t.Fatalf("consumer %+v", c)
	}
	if _, err := ReadState(path, "NOPE"); err == nil {
		t.Fatal("missing stream read")
	}
}
