package transport

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// parsedOp is one op as the recording handler saw it. Slices are copied
// into strings, so nil and empty compare equal ("absent").
type parsedOp struct {
	Kind    string
	Subject string
	Reply   string // PUB/HPUB reply, SUB queue
	Header  string
	Payload string // PUB/HPUB payload, CONNECT arg
	SID     string
	Max     int64
}

func (o parsedOp) String() string {
	return fmt.Sprintf("%s{subj=%q reply/queue=%q hdr=%q payload=%q sid=%q max=%d}",
		o.Kind, o.Subject, o.Reply, o.Header, o.Payload, o.SID, o.Max)
}

// errTestHandler is what recordingHandler returns for a SUB with sid "fail".
var errTestHandler = errors.New("test handler rejected op")

// recordingHandler records every op it receives, copying the slices as
// the Handler contract requires.
type recordingHandler struct {
	ops []parsedOp
}

var _ Handler = (*recordingHandler)(nil)

func (r *recordingHandler) HandleConnect(arg []byte) error {
	r.ops = append(r.ops, parsedOp{Kind: "CONNECT", Payload: string(arg)})
	return nil
}

func (r *recordingHandler) HandlePub(subject, reply, payload []byte) error {
	r.ops = append(r.ops, parsedOp{Kind: "PUB", Subject: string(subject), Reply: string(reply), Payload: string(payload)})
	return nil
}

func (r *recordingHandler) HandleHPub(subject, reply, header, payload []byte) error {
	r.ops = append(r.ops, parsedOp{Kind: "HPUB", Subject: string(subject), Reply: string(reply), Header: string(header), Payload: string(payload)})
	return nil
}

func (r *recordingHandler) HandleSub(subject, queue, sid []byte) error {
	if string(sid) == "fail" {
		return errTestHandler
	}
	r.ops = append(r.ops, parsedOp{Kind: "SUB", Subject: string(subject), Reply: string(queue), SID: string(sid)})
	return nil
}

func (r *recordingHandler) HandleUnsub(sid []byte, max int64) error {
	r.ops = append(r.ops, parsedOp{Kind: "UNSUB", SID: string(sid), Max: max})
	return nil
}

func (r *recordingHandler) HandlePing() error {
	r.ops = append(r.ops, parsedOp{Kind: "PING"})
	return nil
}

func (r *recordingHandler) HandlePong() error {
	r.ops = append(r.ops, parsedOp{Kind: "PONG"})
	return nil
}

// nopHandler accepts everything and keeps nothing; the allocation tests
// and benchmarks use it so that only the parser is measured.
type nopHandler struct{ n int }

var _ Handler = (*nopHandler)(nil)

func (h *nopHandler) HandleConnect([]byte) error         { h.n++; return nil }
func (h *nopHandler) HandlePub(_, _, _ []byte) error     { h.n++; return nil }
func (h *nopHandler) HandleHPub(_, _, _, _ []byte) error { h.n++; return nil }
func (h *nopHandler) HandleSub(_, _, _ []byte) error     { h.n++; return nil }
func (h *nopHandler) HandleUnsub([]byte, int64) error    { h.n++; return nil }
func (h *nopHandler) HandlePing() error                  { h.n++; return nil }
func (h *nopHandler) HandlePong() error                  { h.n++; return nil }

// parseChunks feeds chunks to a fresh parser in order, stopping at the
// first error, and returns the ops seen and that error. check, if not
// nil, runs after every Parse call (the fuzz test checks memory bounds).
func parseChunks(cfg ParserConfig, chunks [][]byte, check func(*Parser)) ([]parsedOp, error) {
	p := NewParser(cfg)
	var r recordingHandler
	for _, c := range chunks {
		err := p.Parse(c, &r)
		if check != nil {
			check(p)
		}
		if err != nil {
			return r.ops, err
		}
	}
	return r.ops, nil
}

// splitAt returns in as two chunks split at i.
func splitAt(in []byte, i int) [][]byte {
	return [][]byte{in[:i:i], in[i:]}
}

// bytewise returns in as one chunk per byte.
func bytewise(in []byte) [][]byte {
	chunks := make([][]byte, len(in))
	for i := range in {
		chunks[i] = in[i : i+1 : i+1]
	}
	return chunks
}

// feeding names one way of cutting an input into Parse calls.
type feeding struct {
	name   string
	chunks [][]byte
}

// allFeedings returns in whole, split at every byte boundary, and one
// byte per call: the nats parser_test.go discipline. Chunks are capped
// (three-index slices) so a parser that read past a chunk would be caught
// by the race detector or a panic rather than silently see the next one.
func allFeedings(in []byte) []feeding {
	fs := []feeding{{name: "whole", chunks: [][]byte{in}}}
	for i := 1; i < len(in); i++ {
		fs = append(fs, feeding{name: fmt.Sprintf("split@%d", i), chunks: splitAt(in, i)})
	}
	return append(fs, feeding{name: "bytewise", chunks: bytewise(in)})
}

// connectJSON is what nats.go v1.55.0 sends (no auth).
const connectJSON = `{"verbose":false,"pedantic":false,"tls_required":false,"name":"NATS CLI Version v0.5.0","lang":"go","version":"1.55.0","protocol":1,"echo":true,"headers":true,"no_responders":true}`

// binaryPayload contains CRLF and an embedded op, which a length-delimited
// parser must not interpret.
const binaryPayload = "\r\nPING\r\n\x00\xff\r"

// validCases are inputs the parser must accept, with the ops they yield.
var validCases = []struct {
	name string
	cfg  ParserConfig
	in   string
	want []parsedOp
}{
	{name: "ping", in: "PING\r\n", want: []parsedOp{{Kind: "PING"}}},
	{name: "pong", in: "PONG\r\n", want: []parsedOp{{Kind: "PONG"}}},
	{name: "lower case ping", in: "ping\r\n", want: []parsedOp{{Kind: "PING"}}},
	{name: "mixed case pong", in: "pOnG\r\n", want: []parsedOp{{Kind: "PONG"}}},
	{name: "ping trailing whitespace", in: "PING \t \r\n", want: []parsedOp{{Kind: "PING"}}},
	{name: "ping bare LF", in: "PING\n", want: []parsedOp{{Kind: "PING"}}},
	{
		name: "nats.go connect then ping",
		in:   "CONNECT " + connectJSON + "\r\nPING\r\n",
		want: []parsedOp{{Kind: "CONNECT", Payload: connectJSON}, {Kind: "PING"}},
	},
	{
		name: "connect tab and trailing whitespace",
		in:   "connect\t \t{\"a\": 1} \t\r\n",
		want: []parsedOp{{Kind: "CONNECT", Payload: `{"a": 1}`}},
	},
	{name: "nats.go sub empty queue", in: "SUB foo  1\r\n", want: []parsedOp{{Kind: "SUB", Subject: "foo", SID: "1"}}},
	{name: "sub with queue", in: "SUB foo.* grp 12\r\n", want: []parsedOp{{Kind: "SUB", Subject: "foo.*", Reply: "grp", SID: "12"}}},
	{name: "sub tabs lower case", in: "sub\tfoo.>\t\tq\t7\t\r\n", want: []parsedOp{{Kind: "SUB", Subject: "foo.>", Reply: "q", SID: "7"}}},
	{name: "nats.go unsub trailing space", in: "UNSUB 1 \r\n", want: []parsedOp{{Kind: "UNSUB", SID: "1"}}},
	{name: "unsub with max", in: "UNSUB 1 5\r\n", want: []parsedOp{{Kind: "UNSUB", SID: "1", Max: 5}}},
	// A max that is not a number means no max, as nats-server reads it.
	{name: "unsub bad max", in: "UNSUB 1 x\r\n", want: []parsedOp{{Kind: "UNSUB", SID: "1"}}},
	{name: "unsub negative max", in: "UNSUB 1 -1\r\n", want: []parsedOp{{Kind: "UNSUB", SID: "1"}}},
	{name: "unsub max saturates", in: "UNSUB 9 99999999999999999999999\r\n", want: []parsedOp{{Kind: "UNSUB", SID: "9", Max: math.MaxInt64}}},
	{name: "pub", in: "PUB foo 5\r\nhello\r\n", want: []parsedOp{{Kind: "PUB", Subject: "foo", Payload: "hello"}}},
	{
		name: "pub with reply",
		in:   "PUB svc.echo _INBOX.abc.123 5\r\nhello\r\n",
		want: []parsedOp{{Kind: "PUB", Subject: "svc.echo", Reply: "_INBOX.abc.123", Payload: "hello"}},
	},
	{name: "pub extra whitespace", in: "Pub \t foo \t 5 \t\r\nhello\r\n", want: []parsedOp{{Kind: "PUB", Subject: "foo", Payload: "hello"}}},
	{name: "pub zero payload", in: "PUB foo 0\r\n\r\n", want: []parsedOp{{Kind: "PUB", Subject: "foo"}}},
	{name: "pub bare LF control line", in: "pub foo 2\nhi\r\n", want: []parsedOp{{Kind: "PUB", Subject: "foo", Payload: "hi"}}},
	{
		name: "pub binary payload with CRLF inside",
		in:   fmt.Sprintf("PUB bin %d\r\n%s\r\nPING\r\n", len(binaryPayload), binaryPayload),
		want: []parsedOp{{Kind: "PUB", Subject: "bin", Payload: binaryPayload}, {Kind: "PING"}},
	},
	{
		name: "pub large payload",
		in:   "PUB big 3000\r\n" + strings.Repeat("x", 3000) + "\r\n",
		want: []parsedOp{{Kind: "PUB", Subject: "big", Payload: strings.Repeat("x", 3000)}},
	},
	{
		name: "pub payload exactly max",
		cfg:  ParserConfig{MaxPayload: 4},
		in:   "PUB foo 4\r\nabcd\r\n",
		want: []parsedOp{{Kind: "PUB", Subject: "foo", Payload: "abcd"}},
	},
	{
		name: "hpub status only",
		in:   "HPUB _INBOX.x 16 16\r\nNATS/1.0 503\r\n\r\n\r\n",
		want: []parsedOp{{Kind: "HPUB", Subject: "_INBOX.x", Header: "NATS/1.0 503\r\n\r\n"}},
	},
	{
		name: "hpub header and payload with reply",
		in:   "HPUB foo _INBOX.r 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nhello\r\n",
		want: []parsedOp{{Kind: "HPUB", Subject: "foo", Reply: "_INBOX.r", Header: "NATS/1.0\r\nA: B\r\n\r\n", Payload: "hello"}},
	},
	{
		name: "hpub lower case tabs",
		in:   "hpub\tfoo\t12\t14\r\nNATS/1.0\r\n\r\nhi\r\n",
		want: []parsedOp{{Kind: "HPUB", Subject: "foo", Header: "NATS/1.0\r\n\r\n", Payload: "hi"}},
	},
	{
		// The parser frames; whether an empty header block is acceptable
		// is the connection's decision.
		name: "hpub zero header",
		in:   "HPUB foo 0 3\r\nabc\r\n",
		want: []parsedOp{{Kind: "HPUB", Subject: "foo", Payload: "abc"}},
	},
	{
		name: "hpub total exactly max",
		cfg:  ParserConfig{MaxPayload: 16},
		in:   "HPUB foo 16 16\r\nNATS/1.0 503\r\n\r\n\r\n",
		want: []parsedOp{{Kind: "HPUB", Subject: "foo", Header: "NATS/1.0 503\r\n\r\n"}},
	},
	{
		name: "control line exactly max",
		cfg:  ParserConfig{MaxControlLine: 16},
		in:   "SUB abcdefghij 1\r\n",
		want: []parsedOp{{Kind: "SUB", Subject: "abcdefghij", SID: "1"}},
	},
	{
		name: "control line exactly max bare LF",
		cfg:  ParserConfig{MaxControlLine: 16},
		in:   "SUB abcdefghij 1\n",
		want: []parsedOp{{Kind: "SUB", Subject: "abcdefghij", SID: "1"}},
	},
	{
		name: "several ops in one buffer",
		in: "CONNECT {}\r\nSUB a  1\r\nSUB b q 2\r\nPUB a 2\r\nhi\r\nHPUB b r 12 13\r\nNATS/1.0\r\n\r\nx\r\n" +
			"UNSUB 1 \r\nUNSUB 2 3\r\nPING\r\nPONG\r\n",
		want: []parsedOp{
			{Kind: "CONNECT", Payload: "{}"},
			{Kind: "SUB", Subject: "a", SID: "1"},
			{Kind: "SUB", Subject: "b", Reply: "q", SID: "2"},
			{Kind: "PUB", Subject: "a", Payload: "hi"},
			{Kind: "HPUB", Subject: "b", Reply: "r", Header: "NATS/1.0\r\n\r\n", Payload: "x"},
			{Kind: "UNSUB", SID: "1"},
			{Kind: "UNSUB", SID: "2", Max: 3},
			{Kind: "PING"},
			{Kind: "PONG"},
		},
	},
	{
		// A trailing partial op is kept, not reported or rejected.
		name: "trailing partial op",
		in:   "PING\r\nPUB foo 5\r\nhel",
		want: []parsedOp{{Kind: "PING"}},
	},
}

func TestParser_Valid(t *testing.T) {
	t.Parallel()
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, f := range allFeedings([]byte(tc.in)) {
				got, err := parseChunks(tc.cfg, f.chunks, nil)
				if err != nil {
					t.Fatalf("%s: unexpected error: %v", f.name, err)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("%s: ops mismatch\n got: %v\nwant: %v", f.name, got, tc.want)
				}
			}
		})
	}
}

// errorCases are inputs the parser must reject. wantOps are the ops
// delivered before the error; wantOp is the ProtocolError.Op, if any.
var errorCases = []struct {
	name    string
	cfg     ParserConfig
	in      string
	wantErr error
	wantOp  string
	wantOps []parsedOp
}{
	{name: "unknown op", in: "FOO bar\r\n", wantErr: ErrUnknownOp},
	{name: "op with extra letter", in: "PINGX\r\n", wantErr: ErrUnknownOp},
	{name: "server op from client", in: "INFO {}\r\n", wantErr: ErrUnknownOp},
	{name: "msg from client", in: "MSG foo 1 5\r\nhello\r\n", wantErr: ErrUnknownOp},
	{name: "garbage without line end", in: "\x00\x01\x02", wantErr: ErrUnknownOp},
	{name: "http request", in: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", wantErr: ErrUnknownOp},
	{name: "tls client hello after ping", in: "PING\r\n\x16\x03\x01\x02\x00", wantErr: ErrUnknownOp, wantOps: []parsedOp{{Kind: "PING"}}},
	{name: "empty line", in: "\r\n", wantErr: ErrUnknownOp},
	{name: "bare LF line", in: "PING\n\n", wantErr: ErrUnknownOp, wantOps: []parsedOp{{Kind: "PING"}}},
	{name: "leading whitespace before op", in: " PING\r\n", wantErr: ErrUnknownOp},
	{name: "op prefix then line end", in: "PIN\r\n", wantErr: ErrUnknownOp},
	{name: "op glued to json", in: "CONNECT{}\r\n", wantErr: ErrUnknownOp},
	{name: "stray CR inside op", in: "PING\r\r\n", wantErr: ErrUnknownOp},
	{name: "oversized unknown op is unknown op", cfg: ParserConfig{MaxControlLine: 8}, in: "XXXXXXXXXXXXXXXXXX\r\n", wantErr: ErrUnknownOp},

	{name: "control line too long", in: "SUB " + strings.Repeat("a", 5000) + " 1\r\n", wantErr: ErrMaxControlLine},
	{name: "control line too long without line end", in: "PUB " + strings.Repeat("a", 5000), wantErr: ErrMaxControlLine},
	{name: "control line one over max", cfg: ParserConfig{MaxControlLine: 16}, in: "SUB abcdefghijk 1\r\n", wantErr: ErrMaxControlLine},
	{name: "connect too long", cfg: ParserConfig{MaxControlLine: 64}, in: "CONNECT " + connectJSON + "\r\n", wantErr: ErrMaxControlLine},
	{name: "tiny max still reports max line", cfg: ParserConfig{MaxControlLine: 2}, in: "PING\r\n", wantErr: ErrMaxControlLine},

	{name: "pub over max payload before payload", cfg: ParserConfig{MaxPayload: 10}, in: "PUB foo 11\r\n", wantErr: ErrMaxPayload},
	{name: "pub reply over max payload", cfg: ParserConfig{MaxPayload: 10}, in: "PUB foo bar 11\r\n" + strings.Repeat("x", 11) + "\r\n", wantErr: ErrMaxPayload},
	{name: "hpub total over max payload", cfg: ParserConfig{MaxPayload: 10}, in: "HPUB foo 5 11\r\n", wantErr: ErrMaxPayload},
	{name: "pub size overflows int64", in: "PUB foo 99999999999999999999999999\r\n", wantErr: ErrMaxPayload},

	{name: "pub negative size", in: "PUB foo -1\r\n", wantErr: ErrProtocol, wantOp: "PUB"},
	{name: "pub non-numeric size", in: "PUB foo abc\r\n", wantErr: ErrProtocol, wantOp: "PUB"},
	{name: "pub size with junk", in: "PUB foo 5x\r\nhello\r\n", wantErr: ErrProtocol, wantOp: "PUB"},
	{name: "pub plus sign size", in: "PUB foo +5\r\nhello\r\n", wantErr: ErrProtocol, wantOp: "PUB"},
	{name: "hpub bad header size", in: "HPUB foo x 5\r\n", wantErr: ErrProtocol, wantOp: "HPUB"},
	{name: "hpub bad total size", in: "HPUB foo 1 -5\r\n", wantErr: ErrProtocol, wantOp: "HPUB"},
	{name: "hpub header over total", in: "HPUB foo 10 5\r\nhello\r\n", wantErr: ErrProtocol, wantOp: "HPUB"},

	{name: "pub missing args", in: "PUB\r\n", wantErr: ErrProtocol, wantOp: "PUB"},
	{name: "pub missing size", in: "PUB foo\r\n", wantErr: ErrProtocol, wantOp: "PUB"},
	{name: "pub too many args", in: "PUB a b c 5\r\nhello\r\n", wantErr: ErrProtocol, wantOp: "PUB"},
	{name: "hpub missing total", in: "HPUB foo 5\r\n", wantErr: ErrProtocol, wantOp: "HPUB"},
	{name: "hpub too many args", in: "HPUB a b c 1 2\r\n", wantErr: ErrProtocol, wantOp: "HPUB"},
	{name: "sub missing sid", in: "SUB foo\r\n", wantErr: ErrProtocol, wantOp: "SUB"},
	{name: "sub no args", in: "SUB  \r\n", wantErr: ErrProtocol, wantOp: "SUB"},
	{name: "sub too many args", in: "SUB a b c d\r\n", wantErr: ErrProtocol, wantOp: "SUB"},
	{name: "unsub no args", in: "UNSUB\r\n", wantErr: ErrProtocol, wantOp: "UNSUB"},
	{name: "unsub too many args", in: "UNSUB 1 2 3\r\n", wantErr: ErrProtocol, wantOp: "UNSUB"},
	{name: "connect without json", in: "CONNECT \t \r\n", wantErr: ErrProtocol, wantOp: "CONNECT"},
	{name: "connect bare", in: "CONNECT\r\n", wantErr: ErrProtocol, wantOp: "CONNECT"},
	{name: "ping with args", in: "PING x\r\n", wantErr: ErrProtocol, wantOp: "PING"},
	{name: "pong with args", in: "PONG 1\r\n", wantErr: ErrProtocol, wantOp: "PONG"},

	{name: "payload longer than declared", in: "PUB foo 5\r\nhelloXX\r\n", wantErr: ErrProtocol, wantOp: "PUB"},
	{name: "payload shorter than declared", in: "PUB foo 10\r\nhello\r\nPING\r\n", wantErr: ErrProtocol, wantOp: "PUB"},
	{name: "payload followed by bare LF", in: "PUB foo 5\r\nhello\nPING\r\n", wantErr: ErrProtocol, wantOp: "PUB"},
	{name: "hpub payload not followed by CRLF", in: "HPUB foo 12 12\r\nNATS/1.0\r\n\r\nXY", wantErr: ErrProtocol, wantOp: "HPUB"},
	{name: "error after valid ops", in: "PING\r\nSUB a 1\r\nBOGUS\r\n", wantErr: ErrUnknownOp, wantOps: []parsedOp{{Kind: "PING"}, {Kind: "SUB", Subject: "a", SID: "1"}}},

	{name: "handler error propagates", in: "PING\r\nSUB foo fail\r\nPONG\r\n", wantErr: errTestHandler, wantOps: []parsedOp{{Kind: "PING"}}},
}

func TestParser_Errors(t *testing.T) {
	t.Parallel()
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, f := range allFeedings([]byte(tc.in)) {
				got, err := parseChunks(tc.cfg, f.chunks, nil)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("%s: error = %v, want %v", f.name, err, tc.wantErr)
				}
				if tc.wantErr == errTestHandler && err != errTestHandler {
					t.Fatalf("%s: handler error was wrapped: %v", f.name, err)
				}
				if tc.wantOp != "" {
					var pe *ProtocolError
					if !errors.As(err, &pe) || pe.Op != tc.wantOp {
						t.Fatalf("%s: error %v is not a ProtocolError for %s", f.name, err, tc.wantOp)
					}
				}
				if !slices.Equal(got, tc.wantOps) {
					t.Fatalf("%s: ops before error mismatch\n got: %v\nwant: %v", f.name, got, tc.wantOps)
				}
			}
		})
	}
}

// TestParser_MaxControlLine_Early checks that an unterminated line is
// rejected on the very byte that takes it past the limit, and that a CR
// at limit+1 is not counted because it may start the CRLF.
func TestParser_MaxControlLine_Early(t *testing.T) {
	t.Parallel()
	const limit = 64
	p := NewParser(ParserConfig{MaxControlLine: limit})
	var h recordingHandler
	line := "SUB " + strings.Repeat("a", 200)
	for i := range len(line) {
		err := p.Parse([]byte{line[i]}, &h)
		if i < limit && err != nil {
			t.Fatalf("byte %d: early error %v", i, err)
		}
		if i == limit {
			if !errors.Is(err, ErrMaxControlLine) {
				t.Fatalf("byte %d: error = %v, want ErrMaxControlLine", i, err)
			}
			break
		}
	}
	if c := cap(p.line); c > limit+2 {
		t.Fatalf("line buffer cap %d exceeds bound %d", c, limit+2)
	}

	p = NewParser(ParserConfig{MaxControlLine: limit})
	exact := "SUB " + strings.Repeat("a", limit-6) + " 1"
	for _, chunk := range []string{exact, "\r", "\n"} {
		if err := p.Parse([]byte(chunk), &h); err != nil {
			t.Fatalf("line of exactly %d bytes: %v", limit, err)
		}
	}
}

// TestParser_MaxControlLine_LargeChunk checks that a huge read without a
// line end is rejected in one call without being buffered.
func TestParser_MaxControlLine_LargeChunk(t *testing.T) {
	t.Parallel()
	p := NewParser(ParserConfig{})
	var h recordingHandler
	err := p.Parse([]byte("PUB "+strings.Repeat("a", 1<<20)), &h)
	if !errors.Is(err, ErrMaxControlLine) {
		t.Fatalf("error = %v, want ErrMaxControlLine", err)
	}
	if c := cap(p.line); c > DefaultMaxControlLine+2 {
		t.Fatalf("line buffer cap %d exceeds bound", c)
	}
}

// TestParser_UnknownOp_Early checks that garbage is rejected on its
// first byte rather than after a line end that may never come.
func TestParser_UnknownOp_Early(t *testing.T) {
	t.Parallel()
	p := NewParser(ParserConfig{})
	var h recordingHandler
	if err := p.Parse([]byte("X"), &h); !errors.Is(err, ErrUnknownOp) {
		t.Fatalf("error = %v, want ErrUnknownOp", err)
	}
}

// TestParser_MaxPayload_BeforePayload checks that an oversized PUB is
// rejected from its control line alone, before any payload byte is read
// or buffered.
func TestParser_MaxPayload_BeforePayload(t *testing.T) {
	t.Parallel()
	p := NewParser(ParserConfig{MaxPayload: 1024})
	var h recordingHandler
	err := p.Parse([]byte("PUB foo 1000000\r\n"), &h)
	if !errors.Is(err, ErrMaxPayload) {
		t.Fatalf("error = %v, want ErrMaxPayload", err)
	}
	if p.inPayload || cap(p.msg.data) != 0 {
		t.Fatalf("parser started buffering the payload (inPayload=%v cap=%d)", p.inPayload, cap(p.msg.data))
	}
}

// TestParser_ZeroCopy checks that an op wholly inside the buffer is
// handed over as subslices of that buffer.
func TestParser_ZeroCopy(t *testing.T) {
	t.Parallel()
	buf := []byte("PUB foo bar 5\r\nhello\r\nHPUB s 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
	h := &zeroCopyHandler{buf: buf}
	if err := NewParser(ParserConfig{}).Parse(buf, h); err != nil {
		t.Fatal(err)
	}
	want := []int{4, 8, 15, 27, 36}
	if !slices.Equal(h.offsets, want) {
		t.Fatalf("slice offsets = %v, want %v", h.offsets, want)
	}
}

// zeroCopyHandler records where in buf each non-empty slice starts, or -1
// if it points elsewhere.
type zeroCopyHandler struct {
	nopHandler
	buf     []byte
	offsets []int
}

func (z *zeroCopyHandler) offset(b []byte) int {
	for i := range z.buf {
		if &z.buf[i] == &b[0] {
			return i
		}
	}
	return -1
}

func (z *zeroCopyHandler) HandlePub(subject, reply, payload []byte) error {
	z.offsets = append(z.offsets, z.offset(subject), z.offset(reply), z.offset(payload))
	return nil
}

func (z *zeroCopyHandler) HandleHPub(subject, _, header, _ []byte) error {
	z.offsets = append(z.offsets, z.offset(subject), z.offset(header))
	return nil
}

// steadyStateInput holds every op kind, each wholly inside the buffer.
var steadyStateInput = []byte("CONNECT " + connectJSON + "\r\n" +
	"SUB foo  1\r\nSUB bar q 2\r\n" +
	"PUB foo 5\r\nhello\r\nPUB foo _INBOX.a.b 5\r\nhello\r\n" +
	"HPUB foo 16 21\r\nNATS/1.0 503\r\n\r\nhello\r\n" +
	"UNSUB 1 \r\nUNSUB 2 10\r\nPING\r\nPONG\r\n")

// TestParser_ZeroAllocs proves the steady state does not allocate. It
// does not call t.Parallel: AllocsPerRun counts the whole process's
// mallocs, so concurrent tests would be counted too.
func TestParser_ZeroAllocs(t *testing.T) {
	p := NewParser(ParserConfig{})
	h := &nopHandler{}
	whole := testing.AllocsPerRun(200, func() {
		if err := p.Parse(steadyStateInput, h); err != nil {
			t.Fatal(err)
		}
	})
	if whole != 0 {
		t.Errorf("whole ops: %.1f allocs per Parse, want 0", whole)
	}

	// Split ops copy into buffers that, once grown, are reused: cut inside
	// a control line and inside a payload.
	payloadCut := bytes.Index(steadyStateInput, []byte("hello")) + 2
	lineCut := bytes.Index(steadyStateInput, []byte("UNSUB 2")) + 3
	split := testing.AllocsPerRun(200, func() {
		for _, c := range [][]byte{steadyStateInput[:payloadCut], steadyStateInput[payloadCut:lineCut], steadyStateInput[lineCut:]} {
			if err := p.Parse(c, h); err != nil {
				t.Fatal(err)
			}
		}
	})
	if split != 0 {
		t.Errorf("split ops after warm-up: %.1f allocs per run, want 0", split)
	}
}

// TestParser_BoundedMemory checks that buffers for split ops stay within
// their limits and that a large split payload is not retained.
func TestParser_BoundedMemory(t *testing.T) {
	t.Parallel()
	const maxPayload = 256 << 10
	p := NewParser(ParserConfig{MaxPayload: maxPayload})
	var h nopHandler
	in := []byte(fmt.Sprintf("PUB foo %d\r\n%s\r\n", maxPayload, strings.Repeat("z", maxPayload)))
	for chunk := range slices.Chunk(in, 4096) {
		if err := p.Parse(chunk, &h); err != nil {
			t.Fatal(err)
		}
		if c := cap(p.msg.data); c > maxPayload+2 {
			t.Fatalf("payload buffer cap %d exceeds %d", c, maxPayload+2)
		}
	}
	if h.n != 1 {
		t.Fatalf("got %d ops, want 1", h.n)
	}
	if p.msg.data != nil {
		t.Fatalf("payload buffer of %d bytes retained after a large message", cap(p.msg.data))
	}
}

func TestProtocolError_Is(t *testing.T) {
	t.Parallel()
	var err error = &ProtocolError{Op: "PUB", Reason: "wrong number of arguments"}
	if !errors.Is(err, ErrProtocol) {
		t.Fatal("ProtocolError does not match ErrProtocol")
	}
	if want := "protocol error: PUB: wrong number of arguments"; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
}

// benchInput returns n copies of op, as one read buffer would hold them.
func benchInput(op string, n int) []byte {
	return []byte(strings.Repeat(op, n))
}

// runParserBench parses in per iteration, in chunks of chunk bytes (0 =
// whole), and reports the per-message cost.
func runParserBench(b *testing.B, in []byte, msgs, chunk int) {
	b.Helper()
	p := NewParser(ParserConfig{})
	h := &nopHandler{}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if chunk == 0 {
			if err := p.Parse(in, h); err != nil {
				b.Fatal(err)
			}
			continue
		}
		for c := range slices.Chunk(in, chunk) {
			if err := p.Parse(c, h); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*msgs), "ns/msg")
}

const benchMsgs = 256

const (
	benchReply   = "_INBOX.abcdefghijklmnopqrstuv.12345678"
	benchHeader  = "NATS/1.0\r\nNats-Msg-Id: 42\r\n\r\n"
	benchPayload = 128
)

var (
	benchPub = fmt.Sprintf("PUB bench.subject.foo %s %d\r\n%s\r\n",
		benchReply, benchPayload, strings.Repeat("p", benchPayload))
	benchHPub = fmt.Sprintf("HPUB bench.subject.foo %s %d %d\r\n%s%s\r\n",
		benchReply, len(benchHeader), len(benchHeader)+benchPayload, benchHeader, strings.Repeat("p", benchPayload))
)

// BenchmarkParser_Pub measures PUBs with a reply and 128-byte payload,
// all whole in one buffer.
func BenchmarkParser_Pub(b *testing.B) {
	runParserBench(b, benchInput(benchPub, benchMsgs), benchMsgs, 0)
}

// BenchmarkParser_HPub measures HPUBs with a header and 128-byte payload.
func BenchmarkParser_HPub(b *testing.B) {
	runParserBench(b, benchInput(benchHPub, benchMsgs), benchMsgs, 0)
}

// BenchmarkParser_PubSplitReads feeds the same PUBs in 4000-byte reads,
// so some ops straddle reads and take the copying path.
func BenchmarkParser_PubSplitReads(b *testing.B) {
	runParserBench(b, benchInput(benchPub, benchMsgs), benchMsgs, 4000)
}

// BenchmarkParser_PubLarge measures 64 KiB payloads in 32 KiB reads.
func BenchmarkParser_PubLarge(b *testing.B) {
	in := benchInput("PUB big 65536\r\n"+strings.Repeat("x", 65536)+"\r\n", 16)
	runParserBench(b, in, 16, 32<<10)
}
