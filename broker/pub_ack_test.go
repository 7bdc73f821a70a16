package broker

import (
	"encoding/json"
	"math"
	"testing"
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
