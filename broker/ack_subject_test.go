package broker

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestAppendAckSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		// Captured from nats-server 2.15.2 (reference §2.8, §2.9, appendix A).
		{
			name: "first delivery",
			got:  AppendAckSubject(nil, "S1", "W", 1, 10, 1, 1795913513492727530, 4),
			want: "$JS.ACK.S1.W.1.10.1.1795913513492727530.4",
		},
		{
			name: "redelivery",
			got:  AppendAckSubject(nil, "S1", "W", 2, 13, 6, 1795913513493437316, 0),
			want: "$JS.ACK.S1.W.2.13.6.1795913513493437316.0",
		},
		{
			name: "appends",
			got:  AppendAckSubject([]byte("x "), "ORDERS", "C1", 1, 1, 1, 1795913468357105088, 1),
			want: "x $JS.ACK.ORDERS.C1.1.1.1.1795913468357105088.1",
		},
		{
			name: "extremes",
			got:  AppendAckSubject(nil, "S", "C", math.MaxUint64, 0, math.MaxUint64, math.MaxInt64, math.MaxUint64),
			want: "$JS.ACK.S.C.18446744073709551615.0.18446744073709551615.9223372036854775807.18446744073709551615",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if string(tt.got) != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestParseAckSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		subject string
		want    AckRef
		ok      bool
	}{
		{
			name:    "v1 captured",
			subject: "$JS.ACK.S1.W.1.10.1.1795913513492727530.4",
			want:    AckRef{Stream: "S1", Consumer: "W", Delivered: 1, StreamSeq: 10, ConsumerSeq: 1, Timestamp: 1795913513492727530, Pending: 4},
			ok:      true,
		},
		{
			name:    "v2 eleven tokens",
			subject: "$JS.ACK._.ACCHASH.S1.W.2.13.6.1795913513493437316.0",
			want:    AckRef{Stream: "S1", Consumer: "W", Delivered: 2, StreamSeq: 13, ConsumerSeq: 6, Timestamp: 1795913513493437316, Pending: 0},
			ok:      true,
		},
		{
			name:    "v2 with random token",
			subject: "$JS.ACK.hub.ACCHASH.ORDERS.C1.3.7.9.100.5.abcdef",
			want:    AckRef{Stream: "ORDERS", Consumer: "C1", Delivered: 3, StreamSeq: 7, ConsumerSeq: 9, Timestamp: 100, Pending: 5},
			ok:      true,
		},
		{
			name:    "v2 with more tokens",
			subject: "$JS.ACK.hub.ACCHASH.ORDERS.C1.3.7.9.100.5.x.y.z",
			want:    AckRef{Stream: "ORDERS", Consumer: "C1", Delivered: 3, StreamSeq: 7, ConsumerSeq: 9, Timestamp: 100, Pending: 5},
			ok:      true,
		},
		{
			name:    "max values",
			subject: "$JS.ACK.S.C.18446744073709551615.1.2.9223372036854775807.18446744073709551615",
			want:    AckRef{Stream: "S", Consumer: "C", Delivered: math.MaxUint64, StreamSeq: 1, ConsumerSeq: 2, Timestamp: math.MaxInt64, Pending: math.MaxUint64},
			ok:      true,
		},
		{name: "ten tokens", subject: "$JS.ACK.x.S1.W.1.10.1.100.4"},
		{name: "eight tokens", subject: "$JS.ACK.S1.W.1.10.1.100"},
		{name: "empty", subject: ""},
		{name: "prefix only", subject: "$JS.ACK."},
		{name: "wrong prefix", subject: "$JS.ACX.S1.W.1.10.1.100.4"},
		{name: "lower case prefix", subject: "$js.ack.S1.W.1.10.1.100.4"},
		{name: "not js", subject: "foo.bar.S1.W.1.10.1.100.4"},
		{name: "non-numeric", subject: "$JS.ACK.S1.W.1.x.1.100.4"},
		{name: "signed", subject: "$JS.ACK.S1.W.+1.10.1.100.4"},
		{name: "negative timestamp", subject: "$JS.ACK.S1.W.1.10.1.-100.4"},
		{name: "empty number", subject: "$JS.ACK.S1.W.1..1.100.4"},
		{name: "empty pending", subject: "$JS.ACK.S1.W.1.10.1.100."},
		{name: "uint64 overflow", subject: "$JS.ACK.S1.W.18446744073709551616.10.1.100.4"},
		{name: "timestamp overflow", subject: "$JS.ACK.S1.W.1.10.1.9223372036854775808.4"},
		{name: "empty stream", subject: "$JS.ACK..W.1.10.1.100.4"},
		{name: "empty consumer", subject: "$JS.ACK.S1..1.10.1.100.4"},
		{name: "v2 non-numeric", subject: "$JS.ACK._.H.S1.W.1.10.1.100.x.rnd"},
		{name: "v2 empty stream", subject: "$JS.ACK._.H..W.1.10.1.100.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseAckSubject([]byte(tt.subject))
			if ok != tt.ok || got != tt.want {
				t.Fatalf("ParseAckSubject(%q) = %+v, %v; want %+v, %v", tt.subject, got, ok, tt.want, tt.ok)
			}
			got, ok = ParseAckSubjectString(tt.subject)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("ParseAckSubjectString(%q) = %+v, %v; want %+v, %v", tt.subject, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestParseAckSubject_OwnsNames checks that the names survive the reuse of
// the buffer they were parsed from (a connection's read buffer).
func TestParseAckSubject_OwnsNames(t *testing.T) {
	t.Parallel()
	buf := []byte("$JS.ACK.S1.W.1.10.1.100.4")
	ref, ok := ParseAckSubject(buf)
	if !ok {
		t.Fatal("ParseAckSubject failed")
	}
	copy(buf, "XXXXXXXXXXXXXXXXXXXXXXXX")
	if ref.Stream != "S1" || ref.Consumer != "W" {
		t.Fatalf("names changed with the buffer: %q %q", ref.Stream, ref.Consumer)
	}
}

func TestAckSubject_RoundTrip(t *testing.T) {
	t.Parallel()
	refs := []AckRef{
		{Stream: "S1", Consumer: "W", Delivered: 1, StreamSeq: 10, ConsumerSeq: 1, Timestamp: 1795913513492727530, Pending: 4},
		{Stream: "KV_bucket", Consumer: "r8kJ44OG9algLSebiOHjz3_1", Delivered: 1, StreamSeq: 1, ConsumerSeq: 1},
		{Stream: "a-b", Consumer: "c_d", Delivered: 99, StreamSeq: math.MaxUint64, ConsumerSeq: 12345, Timestamp: math.MaxInt64, Pending: math.MaxUint64},
	}
	for _, want := range refs {
		subj := AppendAckSubject(nil, want.Stream, want.Consumer, want.Delivered, want.StreamSeq, want.ConsumerSeq, want.Timestamp, want.Pending)
		got, ok := ParseAckSubject(subj)
		if !ok || got != want {
			t.Errorf("round trip of %+v via %q = %+v, %v", want, subj, got, ok)
		}
	}
}

// natsGoMetadata parses an ack reply the way nats.go does for
// msg.Metadata(). The jetstream package has no exported way to wrap a
// bare message, but its Metadata and the legacy nats.Msg.Metadata share
// one parser (nats.go internal/parser.GetMetadataFields), so the legacy
// entry point checks exactly what a jetstream consumer checks.
func natsGoMetadata(reply string) (*nats.MsgMetadata, error) {
	m := &nats.Msg{Subject: "s", Reply: reply, Sub: &nats.Subscription{}}
	return m.Metadata()
}

// TestAckSubject_NatsGoAccepts checks that nats.go v1.55.0 parses our ack
// subjects into the metadata we put in, and agrees with ParseAckSubject on
// the v2 layout.
func TestAckSubject_NatsGoAccepts(t *testing.T) {
	t.Parallel()
	refs := []AckRef{
		{Stream: "S1", Consumer: "W", Delivered: 1, StreamSeq: 10, ConsumerSeq: 1, Timestamp: 1795913513492727530, Pending: 4},
		{Stream: "ORDERS", Consumer: "C1", Delivered: 3, StreamSeq: math.MaxUint64, ConsumerSeq: 77, Timestamp: 0, Pending: 0},
	}
	for _, ref := range refs {
		subj := string(AppendAckSubject(nil, ref.Stream, ref.Consumer, ref.Delivered, ref.StreamSeq, ref.ConsumerSeq, ref.Timestamp, ref.Pending))
		md, err := natsGoMetadata(subj)
		if err != nil {
			t.Fatalf("nats.go rejects %q: %v", subj, err)
		}
		if got := fromNatsGo(md); got != ref || md.Domain != "" {
			t.Fatalf("nats.go reads %q as %+v (domain %q), want %+v", subj, got, md.Domain, ref)
		}
	}
	v2 := "$JS.ACK.hub.ACCHASH.ORDERS.C1.3.7.9.100.5.rnd"
	md, err := natsGoMetadata(v2)
	if err != nil {
		t.Fatalf("nats.go rejects %q: %v", v2, err)
	}
	ours, ok := ParseAckSubjectString(v2)
	if !ok || fromNatsGo(md) != ours || md.Domain != "hub" {
		t.Fatalf("v2 %q: nats.go %+v (domain %q), ours %+v %v", v2, fromNatsGo(md), md.Domain, ours, ok)
	}
	if _, err := natsGoMetadata("$JS.ACK.x.S1.W.1.10.1.100.4"); err == nil {
		t.Fatal("nats.go accepts a 10-token ack subject; so should we")
	}
}

func fromNatsGo(md *nats.MsgMetadata) AckRef {
	return AckRef{
		Stream: md.Stream, Consumer: md.Consumer, Delivered: md.NumDelivered,
		StreamSeq: md.Sequence.Stream, ConsumerSeq: md.Sequence.Consumer,
		Timestamp: md.Timestamp.UnixNano(), Pending: md.NumPending,
	}
}

func TestParseAck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		payload string
		want    Ack
		ok      bool
	}{
		{payload: "+ACK", want: Ack{Kind: AckAck}, ok: true},
		{payload: "", want: Ack{Kind: AckAck}, ok: true},
		{payload: "+OK", want: Ack{Kind: AckAck}, ok: true},
		{payload: " +ACK\r\n", want: Ack{Kind: AckAck}, ok: true},
		{payload: "-NAK", want: Ack{Kind: AckNak}, ok: true},
		// nats.go NakWithDelay.
		{payload: `-NAK {"delay": 5000000000}`, want: Ack{Kind: AckNak, Delay: 5 * time.Second}, ok: true},
		{payload: `-NAK {"delay":1}`, want: Ack{Kind: AckNak, Delay: 1}, ok: true},
		{payload: "-NAK 5s", want: Ack{Kind: AckNak, Delay: 5 * time.Second}, ok: true},
		{payload: "-NAK  1m30s ", want: Ack{Kind: AckNak, Delay: 90 * time.Second}, ok: true},
		// A delay that does not parse makes a plain NAK (nats-server logs it).
		{payload: "-NAK soon", want: Ack{Kind: AckNak}, ok: true},
		{payload: `-NAK {"delay":"5s"}`, want: Ack{Kind: AckNak}, ok: true},
		{payload: `-NAK {"delay":`, want: Ack{Kind: AckNak}, ok: true},
		{payload: "-NAK -5s", want: Ack{Kind: AckNak}, ok: true},
		{payload: `-NAK {"delay":-5}`, want: Ack{Kind: AckNak}, ok: true},
		{payload: "-NAKED", want: Ack{Kind: AckNak}, ok: true},
		{payload: "+WPI", want: Ack{Kind: AckProgress}, ok: true},
		{payload: "+WPI\n", want: Ack{Kind: AckProgress}, ok: true},
		{payload: "+TERM", want: Ack{Kind: AckTerm}, ok: true},
		// nats.go TermWithReason.
		{payload: "+TERM bad payload", want: Ack{Kind: AckTerm, Reason: "bad payload"}, ok: true},
		{payload: "+TERM   spaced out  ", want: Ack{Kind: AckTerm, Reason: "spaced out"}, ok: true},
		{payload: "+NXT", want: Ack{Kind: AckNext}, ok: true},
		{payload: "+NXT 5", want: Ack{Kind: AckNext, Next: []byte("5")}, ok: true},
		{payload: `+NXT {"batch":2,"no_wait":true}`, want: Ack{Kind: AckNext, Next: []byte(`{"batch":2,"no_wait":true}`)}, ok: true},

		// nats-server matches +ACK, +OK and +WPI whole and ignores the rest.
		{payload: "+ACKX"},
		{payload: "+WPI now"},
		{payload: "+OKAY"},
		{payload: "ACK"},
		{payload: "+ack"},
		{payload: "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseAck([]byte(tt.payload))
			if ok != tt.ok || got.Kind != tt.want.Kind || got.Delay != tt.want.Delay ||
				got.Reason != tt.want.Reason || string(got.Next) != string(tt.want.Next) {
				t.Fatalf("ParseAck(%q) = %+v, %v; want %+v, %v", tt.payload, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseAck_NextIsAPullRequest(t *testing.T) {
	t.Parallel()
	a, ok := ParseAck([]byte(`+NXT {"batch":2,"no_wait":true}`))
	if !ok || a.Kind != AckNext {
		t.Fatalf("ParseAck = %+v, %v", a, ok)
	}
	r, reason := ParsePullRequest(a.Next)
	if reason != "" || r != (PullRequest{Batch: 2, NoWait: true}) {
		t.Fatalf("ParsePullRequest(%q) = %+v, %q", a.Next, r, reason)
	}
}

func TestAckKind_String(t *testing.T) {
	t.Parallel()
	for k, want := range map[AckKind]string{
		AckAck: "+ACK", AckNak: "-NAK", AckProgress: "+WPI", AckTerm: "+TERM", AckNext: "+NXT", 0: "AckKind(0)",
	} {
		if got := k.String(); got != want {
			t.Errorf("AckKind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func TestAckSubject_Allocs(t *testing.T) {
	// Not parallel: AllocsPerRun measures the whole process.
	buf := make([]byte, 0, 128)
	subj := AppendAckSubject(nil, "ORDERS", "C1", 1, 10, 1, 1795913513492727530, 4)
	ssubj := string(subj)
	if n := testing.AllocsPerRun(100, func() {
		buf = AppendAckSubject(buf[:0], "ORDERS", "C1", 1, 10, 1, 1795913513492727530, 4)
	}); n != 0 {
		t.Errorf("AppendAckSubject: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := ParseAckSubjectString(ssubj); !ok {
			t.Fatal("parse failed")
		}
	}); n != 0 {
		t.Errorf("ParseAckSubjectString: %v allocs, want 0", n)
	}
	// One allocation: the copy of the names out of the caller's buffer.
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := ParseAckSubject(subj); !ok {
			t.Fatal("parse failed")
		}
	}); n != 1 {
		t.Errorf("ParseAckSubject: %v allocs, want 1", n)
	}
	ack := []byte("+ACK")
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := ParseAck(ack); !ok {
			t.Fatal("parse failed")
		}
	}); n != 0 {
		t.Errorf("ParseAck(+ACK): %v allocs, want 0", n)
	}
}

func BenchmarkAppendAckSubject(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 128)
	for i := 0; b.Loop(); i++ {
		buf = AppendAckSubject(buf[:0], "ORDERS", "C1", 1, uint64(i), uint64(i), 1795913513492727530, 4)
	}
}

func BenchmarkParseAckSubject(b *testing.B) {
	subj := AppendAckSubject(nil, "ORDERS", "C1", 1, 123456, 123456, 1795913513492727530, 4)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ParseAckSubject(subj); !ok {
			b.Fatal("parse failed")
		}
	}
}

func BenchmarkParseAckSubjectString(b *testing.B) {
	subj := string(AppendAckSubject(nil, "ORDERS", "C1", 1, 123456, 123456, 1795913513492727530, 4))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ParseAckSubjectString(subj); !ok {
			b.Fatal("parse failed")
		}
	}
}

// refParseAckSubject is a deliberately naive restatement of the ack
// subject rules (split, then strconv) that the one-pass scanner is
// checked against.
func refParseAckSubject(s string) (AckRef, bool) {
	toks := strings.Split(s, ".")
	if len(toks) < 2 || toks[0] != "$JS" || toks[1] != "ACK" {
		return AckRef{}, false
	}
	first := 2
	switch {
	case len(toks) == 9:
	case len(toks) >= 11:
		first = 4
	default:
		return AckRef{}, false
	}
	if toks[first] == "" || toks[first+1] == "" {
		return AckRef{}, false
	}
	var nums [5]uint64
	for k := range nums {
		tok := toks[first+2+k]
		if tok == "" || strings.TrimLeft(tok, "0123456789") != "" {
			return AckRef{}, false
		}
		v, err := strconv.ParseUint(tok, 10, 64)
		if err != nil {
			return AckRef{}, false
		}
		nums[k] = v
	}
	if nums[3] > math.MaxInt64 {
		return AckRef{}, false
	}
	return AckRef{
		Stream: toks[first], Consumer: toks[first+1], Delivered: nums[0], StreamSeq: nums[1],
		ConsumerSeq: nums[2], Timestamp: int64(nums[3]), Pending: nums[4],
	}, true
}

// FuzzParseAckSubject checks ParseAckSubject against the naive reference
// and nats.go's parser: whatever we accept, nats.go must accept and read
// the same way (nats.go is laxer about numbers, so not the converse).
func FuzzParseAckSubject(f *testing.F) {
	for _, s := range []string{
		"$JS.ACK.S1.W.1.10.1.1795913513492727530.4",
		"$JS.ACK._.H.S1.W.2.13.6.1795913513493437316.0",
		"$JS.ACK._.H.S1.W.2.13.6.1795913513493437316.0.rnd.x",
		"$JS.ACK.x.S1.W.1.10.1.100.4",
		"$JS.ACK.S.C.18446744073709551616.1.1.1.1",
		"$JS.ACK..C.1.1.1.1.1",
		"$JS.ACK.",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseAckSubject([]byte(s))
		want, wantOK := refParseAckSubject(s)
		if ok != wantOK || got != want {
			t.Fatalf("ParseAckSubject(%q) = %+v, %v; reference %+v, %v", s, got, ok, want, wantOK)
		}
		if gs, gsOK := ParseAckSubjectString(s); gsOK != ok || gs != got {
			t.Fatalf("ParseAckSubjectString(%q) = %+v, %v; []byte form %+v, %v", s, gs, gsOK, got, ok)
		}
		if !ok {
			return
		}
		md, err := natsGoMetadata(s)
		if err != nil {
			t.Fatalf("nats.go rejects %q that we accept: %v", s, err)
		}
		if fromNatsGo(md) != got {
			t.Fatalf("nats.go reads %q as %+v, we read %+v", s, fromNatsGo(md), got)
		}
	})
}

// FuzzAckSubjectRoundTrip checks that every delivery whose names are valid
// ack tokens survives AppendAckSubject -> ParseAckSubject.
func FuzzAckSubjectRoundTrip(f *testing.F) {
	f.Add("S1", "W", uint64(1), uint64(10), uint64(1), int64(1795913513492727530), uint64(4))
	f.Add("KV_b", "c", uint64(math.MaxUint64), uint64(0), uint64(0), int64(0), uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, stream, consumer string, d, sseq, cseq uint64, ts int64, pending uint64) {
		if stream == "" || consumer == "" || strings.Contains(stream, ".") || strings.Contains(consumer, ".") || ts < 0 {
			t.Skip("not a deliverable stream/consumer/timestamp")
		}
		want := AckRef{Stream: stream, Consumer: consumer, Delivered: d, StreamSeq: sseq, ConsumerSeq: cseq, Timestamp: ts, Pending: pending}
		subj := AppendAckSubject(nil, stream, consumer, d, sseq, cseq, ts, pending)
		got, ok := ParseAckSubject(subj)
		if !ok || got != want {
			t.Fatalf("round trip of %+v via %q = %+v, %v", want, subj, got, ok)
		}
	})
}

// FuzzParseAck checks that ParseAck never panics and that what it returns
// is consistent with the kind.
func FuzzParseAck(f *testing.F) {
	for _, s := range []string{
		"", "+ACK", "+OK", "-NAK", `-NAK {"delay": 5000000000}`, "-NAK 5s", "-NAK x",
		"+WPI", "+TERM", "+TERM why", "+NXT", `+NXT {"batch":2}`, "junk", " +ACK ",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		a, ok := ParseAck(payload)
		if !ok {
			if a.Kind != 0 {
				t.Fatalf("ParseAck(%q) refused but returned kind %v", payload, a.Kind)
			}
			return
		}
		if a.Kind < AckAck || a.Kind > AckNext {
			t.Fatalf("ParseAck(%q): kind %d", payload, a.Kind)
		}
		if a.Delay < 0 || (a.Delay != 0 && a.Kind != AckNak) {
			t.Fatalf("ParseAck(%q): delay %v with kind %v", payload, a.Delay, a.Kind)
		}
		if a.Reason != "" && a.Kind != AckTerm {
			t.Fatalf("ParseAck(%q): reason with kind %v", payload, a.Kind)
		}
		if a.Next != nil && a.Kind != AckNext {
			t.Fatalf("ParseAck(%q): next body with kind %v", payload, a.Kind)
		}
		// The +NXT body is a pull request and must be safe to parse.
		ParsePullRequest(a.Next)
	})
}
