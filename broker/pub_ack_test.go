package broker

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"go.uber.org/zap"
)

// appendPubAck must write exactly what encoding/json writes: clients
// parse these bytes, and the slow path is the reference.
func TestAppendPubAck_MatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	acks := []PubAck{
		{Stream: "ORDERS", Seq: 1},
		{Stream: "ORDERS", Seq: math.MaxUint64, Duplicate: true},
		{Stream: "", Seq: 0},
		{Stream: "a-b_c~d", Seq: 42},
		{Stream: `q"uote`, Seq: 7},
		{Stream: `back\\slash`, Seq: 7},
		{Stream: "<html>&", Seq: 7},
		{Stream: "tab\there", Seq: 7},
		{Stream: "ünïcode", Seq: 7},
		{Stream: "del\x7f", Seq: 7},
		{Stream: "S", Seq: 9, Error: &APIError{Code: 503, ErrCode: 10077, Description: "maximum messages exceeded"}},
	}
	for _, a := range acks {
		want, err := json.Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendPubAck([]byte("prefix"), &a)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+string(want) {
			t.Errorf("%+v: got %s, want %s", a, got[len("prefix"):], want)
		}
	}
}

func FuzzAppendPubAck(f *testing.F) {
	f.Add("ORDERS", uint64(1), false)
	f.Add(`a"<b>&\`, uint64(math.MaxUint64), true)
	f.Fuzz(func(t *testing.T, stream string, seq uint64, dup bool) {
		a := PubAck{Stream: stream, Seq: seq, Duplicate: dup}
		want, err := json.Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendPubAck(nil, &a)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%+v: got %s (%v), want %s", a, got, err, want)
		}
	})
}

// A replier answers each reply inbox with its own body although it reuses
// one Message, and an answer costs no allocation: every PubAck of a batch
// goes through it.
func TestReplier_ReusesMessage(t *testing.T) {
	// Not parallel: AllocsPerRun counts every allocation in the process.
	b := New(zap.NewNop())
	rec := &fakeSubscriber{}
	if err := b.Subscribe(&Subscription{Subject: "_INBOX.abc.*", SID: "1", Client: rec}); err != nil {
		t.Fatal(err)
	}
	r := replier{js: &JetStream{b: b}}
	var bodies []string
	rec.DeliverFunc = func(_ *Subscription, m *Message) { bodies = append(bodies, string(m.Payload)) }
	r.respond("_INBOX.abc.longer-first", []byte("1"))
	r.respond("_INBOX.abc.2", []byte("2"))
	r.respond("", []byte("no reply: not sent"))
	r.respond("_INBOX.abc.3", []byte("3"))
	got := rec.deliveries()
	want := []string{"_INBOX.abc.longer-first", "_INBOX.abc.2", "_INBOX.abc.3"}
	if len(got) != len(want) || fmt.Sprint(bodies) != "[1 2 3]" {
		t.Fatalf("deliveries %+v bodies %v, want subjects %v bodies [1 2 3]", got, bodies, want)
	}
	for i := range want {
		if got[i].subject != want[i] {
			t.Errorf("answer %d went to %q, want %q", i, got[i].subject, want[i])
		}
	}

	if raceEnabled() {
		return // the race detector adds allocations of its own
	}
	b2 := New(zap.NewNop())
	if err := b2.Subscribe(&Subscription{Subject: "_INBOX.abc.*", SID: "1", Client: discardSubscriber{}}); err != nil {
		t.Fatal(err)
	}
	r2 := replier{js: &JetStream{b: b2}}
	replies := make([]string, 64)
	for i := range replies {
		replies[i] = fmt.Sprintf("_INBOX.abc.%d", i) // a new subject each time, as PubAcks are
	}
	body := []byte(`{"stream":"S","seq":1}`)
	i := 0
	if n := testing.AllocsPerRun(1000, func() { r2.respond(replies[i%len(replies)], body); i++ }); n != 0 {
		t.Errorf("an answer allocates %.1f times, want 0", n)
	}
}
