package transport

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// fuzzConfig keeps the limits small so the fuzzer reaches them.
var fuzzConfig = ParserConfig{MaxControlLine: 96, MaxPayload: 300}

// FuzzParser checks that arbitrary input never panics, that the parser's
// buffers stay within their bounds, and that cutting the input into Parse
// calls differently (whole, two pieces at a fuzzer-chosen point, one byte
// per call) changes neither the ops delivered nor the kind of error.
func FuzzParser(f *testing.F) {
	for _, tc := range validCases {
		f.Add([]byte(tc.in), uint16(len(tc.in)/2))
	}
	for _, tc := range errorCases {
		f.Add([]byte(tc.in), uint16(len(tc.in)/2))
	}
	f.Add(steadyStateInput, uint16(7))

	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		check := func(p *Parser) { checkParserBounds(t, p) }
		wantOps, wantErr := parseChunks(fuzzConfig, [][]byte{in}, check)

		k := int(cut) % (len(in) + 1)
		feeds := []feeding{
			{name: "split", chunks: splitAt(in, k)},
			{name: "bytewise", chunks: bytewise(in)},
		}
		for _, fd := range feeds {
			gotOps, gotErr := parseChunks(fuzzConfig, fd.chunks, check)
			if errorClass(gotErr) != errorClass(wantErr) {
				t.Fatalf("%s (cut %d): error %v, whole gave %v", fd.name, k, gotErr, wantErr)
			}
			if !slices.Equal(gotOps, wantOps) {
				t.Fatalf("%s (cut %d): ops differ\n got: %v\nwant: %v", fd.name, k, gotOps, wantOps)
			}
		}
	})
}

// FuzzSplitArgs checks the vectorised splitter against bytes.FieldsFunc.
func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{"", " ", "a", " foo  1", "\tfoo\t\tq\t7\t", " a b c d e f", "a\t b", "x \x00 y"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		var dst [maxArgs][]byte
		n := splitArgs(s, &dst)
		want := bytes.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
		if len(want) > maxArgs {
			want = want[:maxArgs]
		}
		if n != len(want) {
			t.Fatalf("splitArgs(%q) = %d fields, want %d", s, n, len(want))
		}
		for i := range n {
			if !bytes.Equal(dst[i], want[i]) {
				t.Fatalf("splitArgs(%q) field %d = %q, want %q", s, i, dst[i], want[i])
			}
		}
	})
}

// checkParserBounds fails if a parser buffer outgrew its limit: a control
// line is held up to lineLimit bytes, a pending subject+reply is part of
// one line, and a split payload needs at most MaxPayload+2 bytes.
func checkParserBounds(t *testing.T, p *Parser) {
	t.Helper()
	if c := cap(p.line); c > p.lineLimit {
		t.Fatalf("line buffer cap %d > %d", c, p.lineLimit)
	}
	if c := cap(p.msg.args); c > p.maxLine {
		t.Fatalf("args buffer cap %d > %d", c, p.maxLine)
	}
	if c := cap(p.msg.data); c > p.maxPayload+2 {
		t.Fatalf("payload buffer cap %d > %d", c, p.maxPayload+2)
	}
}

// errorClass names the kind of a Parse error, so that runs can be
// compared without depending on the wrapped context text.
func errorClass(err error) string {
	var pe *ProtocolError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		return "protocol:" + pe.Op + ":" + pe.Reason
	case errors.Is(err, ErrUnknownOp):
		return "unknown-op"
	case errors.Is(err, ErrMaxControlLine):
		return "max-control-line"
	case errors.Is(err, ErrMaxPayload):
		return "max-payload"
	case errors.Is(err, errTestHandler):
		return "handler"
	default:
		return "other:" + err.Error()
	}
}
