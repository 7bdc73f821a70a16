package broker

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// ackPrefix starts every ack reply subject.
const ackPrefix = "$JS.ACK."

// Token counts of the two ack subject layouts (reference §2.9): v1 has
// exactly 9 tokens; v2 has at least 11 (domain and account hash after
// $JS.ACK, and possibly more tokens at the end, which are ignored).
const (
	ackTokensV1 = 9
	ackTokensV2 = 11
)

// AppendAckSubject appends the v1 ack reply subject of one delivery,
// "$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>",
// to dst and returns the extended slice. This is the layout nats-server
// sends by default and every client parses. It does not allocate when dst
// has room. ts is the message's store time in Unix nanoseconds and must
// not be negative (clients read a "-" as a malformed number).
func AppendAckSubject(dst []byte, stream, consumer string, delivered, streamSeq, consumerSeq uint64, ts int64, pending uint64) []byte {
	dst = append(dst, ackPrefix...)
	dst = append(dst, stream...)
	dst = append(dst, '.')
	dst = append(dst, consumer...)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, delivered, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, streamSeq, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, consumerSeq, 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, '.')
	return strconv.AppendUint(dst, pending, 10)
}

// AckRef is what an ack reply subject says about the delivery it acks.
type AckRef struct {
	Stream, Consumer string
	// Delivered is the delivery count of the message (1 on first delivery).
	Delivered uint64
	// StreamSeq is the message's stream sequence.
	StreamSeq uint64
	// ConsumerSeq is the consumer's delivery sequence of this delivery.
	ConsumerSeq uint64
	// Timestamp is the message's store time in Unix nanoseconds.
	Timestamp int64
	// Pending is the number of messages left for the consumer after it.
	Pending uint64
}

// ParseAckSubject parses a v1 or v2 ack reply subject. It is stricter
// than nats-server, which reads a malformed number as garbage and then
// finds no such delivery: ok is false for a token count of 10 or under 9,
// a missing "$JS.ACK." prefix, an empty stream or consumer name, or a
// number token that is not a plain decimal (or overflows; the timestamp
// must fit an int64).
//
// The subject usually points into a connection's read buffer, so the
// names are copied: that is the one allocation. ParseAckSubjectString
// does not allocate at all.
func ParseAckSubject(subject []byte) (AckRef, bool) {
	t, ok := scanAckSubject(subject)
	if !ok {
		return AckRef{}, false
	}
	// One string holds "<stream>.<consumer>"; both names are slices of it.
	names := string(subject[t.streamStart:t.consumerEnd])
	return t.ref(names, t.streamStart), true
}

// ParseAckSubjectString is ParseAckSubject for a string subject. The
// names in the result are substrings of subject; nothing is allocated.
func ParseAckSubjectString(subject string) (AckRef, bool) {
	t, ok := scanAckSubject(subject)
	if !ok {
		return AckRef{}, false
	}
	return t.ref(subject, 0), true
}

// ackTokens is the result of scanning an ack subject: where the names are
// and the numbers.
type ackTokens struct {
	streamStart, streamEnd, consumerEnd int
	nums                                [5]uint64 // delivered, sseq, cseq, ts, pending
}

// ref builds an AckRef whose names are slices of names, a string whose
// index 0 is at subject index base.
func (t *ackTokens) ref(names string, base int) AckRef {
	return AckRef{
		Stream:      names[t.streamStart-base : t.streamEnd-base],
		Consumer:    names[t.streamEnd+1-base : t.consumerEnd-base],
		Delivered:   t.nums[0],
		StreamSeq:   t.nums[1],
		ConsumerSeq: t.nums[2],
		Timestamp:   int64(t.nums[3]),
		Pending:     t.nums[4],
	}
}

// scanAckSubject finds the tokens of an ack subject in one pass and
// parses its numbers; it is generic so that the []byte and string entry
// points share it without converting (and so copying) their input.
func scanAckSubject[T string | []byte](s T) (ackTokens, bool) {
	var t ackTokens
	if len(s) < len(ackPrefix) || string(s[:len(ackPrefix)]) != ackPrefix {
		return t, false
	}
	// ends[i] is the index just past token i, for the first ackTokensV2
	// tokens; n counts all tokens.
	var ends [ackTokensV2]int
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			if n < len(ends) {
				ends[n] = i
			}
			n++
		}
	}
	if n < len(ends) {
		ends[n] = len(s)
	}
	n++
	first := 2 // index of the stream token
	switch {
	case n == ackTokensV1:
	case n >= ackTokensV2:
		first = 4
	default:
		return t, false
	}
	start := func(i int) int { return ends[i-1] + 1 }
	t.streamStart, t.streamEnd, t.consumerEnd = start(first), ends[first], ends[first+1]
	if t.streamStart == t.streamEnd || t.streamEnd+1 == t.consumerEnd {
		return t, false
	}
	for k := range t.nums {
		i := first + 2 + k
		v, ok := parseAckNum(s[start(i):ends[i]])
		if !ok {
			return t, false
		}
		t.nums[k] = v
	}
	if t.nums[3] > math.MaxInt64 {
		return t, false
	}
	return t, true
}

// parseAckNum parses a non-empty plain decimal uint64 (no sign, no
// overflow).
func parseAckNum[T string | []byte](b T) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// AckKind is the kind of an acknowledgement payload.
type AckKind uint8

// The ack kinds. The zero AckKind is none of them, so that a zero Ack is
// never mistaken for an acknowledgement.
const (
	// AckAck acknowledges the message ("+ACK", "+OK" or an empty payload).
	AckAck AckKind = iota + 1
	// AckNak asks for redelivery, now or after Ack.Delay ("-NAK").
	AckNak
	// AckProgress says work is in progress: restart the ack wait ("+WPI").
	AckProgress
	// AckTerm stops redelivery of the message ("+TERM [reason]").
	AckTerm
	// AckNext acknowledges and asks for more messages ("+NXT [request]").
	AckNext
)

// String returns the payload keyword of k.
func (k AckKind) String() string {
	switch k {
	case AckAck:
		return "+ACK"
	case AckNak:
		return "-NAK"
	case AckProgress:
		return "+WPI"
	case AckTerm:
		return "+TERM"
	case AckNext:
		return "+NXT"
	}
	return "AckKind(" + strconv.Itoa(int(k)) + ")"
}

// Ack is one parsed acknowledgement payload.
type Ack struct {
	Kind AckKind
	// Delay is the redelivery delay of a -NAK; 0 means redeliver now.
	Delay time.Duration
	// Reason is the reason given with +TERM, "" if none.
	Reason string
	// Next is the pull request body after +NXT (for ParsePullRequest),
	// nil if none. It aliases the payload.
	Next []byte
}

// Ack payload keywords, as nats-server and nats.go spell them.
var (
	ackKwAck      = []byte("+ACK")
	ackKwOK       = []byte("+OK") // pre-JetStream-2 clients
	ackKwNak      = []byte("-NAK")
	ackKwProgress = []byte("+WPI")
	ackKwTerm     = []byte("+TERM")
	ackKwNext     = []byte("+NXT")
)

// ParseAck parses the payload published to an ack subject. Surrounding
// whitespace is ignored. ok is false for a payload that is none of the
// forms; nats-server takes no action on such a payload (it still answers
// a double-ack reply), so neither should the caller.
//
// The keywords are matched as nats-server v2.15 matches them
// (consumer.go processAck): +ACK, +OK and +WPI must be the whole payload,
// while -NAK, +TERM and +NXT are prefixes and what follows is their
// argument. A -NAK argument is a delay, either nats.go's JSON
// `{"delay": <ns>}` or a Go duration such as "5s"; one that parses as
// neither makes a plain -NAK, and a negative delay is "now" (0).
func ParseAck(payload []byte) (Ack, bool) {
	p := bytes.TrimSpace(payload)
	switch {
	case len(p) == 0, bytes.Equal(p, ackKwAck), bytes.Equal(p, ackKwOK):
		return Ack{Kind: AckAck}, true
	case bytes.HasPrefix(p, ackKwNext):
		a := Ack{Kind: AckNext}
		if body := bytes.TrimSpace(p[len(ackKwNext):]); len(body) > 0 {
			a.Next = body
		}
		return a, true
	case bytes.HasPrefix(p, ackKwNak):
		return Ack{Kind: AckNak, Delay: parseNakDelay(bytes.TrimSpace(p[len(ackKwNak):]))}, true
	case bytes.Equal(p, ackKwProgress):
		return Ack{Kind: AckProgress}, true
	case bytes.HasPrefix(p, ackKwTerm):
		a := Ack{Kind: AckTerm}
		if r := bytes.TrimSpace(p[len(ackKwTerm):]); len(r) > 0 {
			a.Reason = string(r)
		}
		return a, true
	}
	return Ack{}, false
}

// parseNakDelay reads the argument of a -NAK; anything unusable is 0.
func parseNakDelay(arg []byte) time.Duration {
	if len(arg) == 0 {
		return 0
	}
	var d time.Duration
	if arg[0] == '{' {
		var opts struct {
			Delay time.Duration `json:"delay"`
		}
		if json.Unmarshal(arg, &opts) != nil {
			return 0
		}
		d = opts.Delay
	} else {
		var err error
		if d, err = time.ParseDuration(string(arg)); err != nil {
			return 0
		}
	}
	return max(d, 0)
}
