package broker

import (
	"testing"
)

func TestParsePubHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want map[string]string // field -> value
	}{
		{"none", "", nil},
		{"status only", "NATS/1.0\r\n\r\n", nil},
		{"msg id", "NATS/1.0\r\nNats-Msg-Id: abc\r\n\r\n", map[string]string{"msgID": "abc"}},
		{"all", "NATS/1.0\r\nNats-Msg-Id: 1\r\nNats-Expected-Stream: S\r\nNats-Expected-Last-Sequence: 5\r\n" +
			"Nats-Expected-Last-Msg-Id: 0\r\nNats-Expected-Last-Subject-Sequence: 7\r\n" +
			"Nats-Expected-Last-Subject-Sequence-Subject: a.b\r\nNats-Rollup: sub\r\n\r\n",
			map[string]string{"msgID": "1", "expStream": "S", "expLastSeq": "5", "expLastMsgID": "0",
				"expLastSubjSeq": "7", "expLastSubjOn": "a.b", "rollup": "sub"}},
		{"blanks trimmed", "NATS/1.0\r\nNats-Msg-Id: \t x y \t\r\n\r\n", map[string]string{"msgID": "x y"}},
		{"no space after colon", "NATS/1.0\r\nNats-Msg-Id:abc\r\n\r\n", map[string]string{"msgID": "abc"}},
		{"first wins", "NATS/1.0\r\nNats-Msg-Id: a\r\nNats-Msg-Id: b\r\n\r\n", map[string]string{"msgID": "a"}},
		{"empty value is absent", "NATS/1.0\r\nNats-Msg-Id:\r\nNats-Msg-Id: b\r\n\r\n", map[string]string{"msgID": "b"}},
		{"case-sensitive", "NATS/1.0\r\nnats-msg-id: a\r\nNATS-MSG-ID: b\r\n\r\n", nil},
		{"prefix of a longer key", "NATS/1.0\r\nNats-Msg-Id-X: a\r\n\r\n", nil},
		{"bare LF", "NATS/1.0\nNats-Msg-Id: a\n\n", map[string]string{"msgID": "a"}},
		{"stops at blank line", "NATS/1.0\r\n\r\nNats-Msg-Id: a\r\n", nil},
		{"status with text", "NATS/1.0 503 No Responders\r\nNats-Rollup: all\r\n\r\n", map[string]string{"rollup": "all"}},
		{"garbage", "no newline at all", nil},
		{"line without colon", "NATS/1.0\r\nNats-Msg-Id\r\nNats-Rollup: sub\r\n\r\n", map[string]string{"rollup": "sub"}},
	}
	for _, tt := range tests {
		h := parsePubHeaders([]byte(tt.in))
		got := map[string]string{}
		for k, v := range map[string][]byte{
			"msgID": h.msgID, "expStream": h.expStream, "expLastSeq": h.expLastSeq, "expLastMsgID": h.expLastMsgID,
			"expLastSubjSeq": h.expLastSubjSeq, "expLastSubjOn": h.expLastSubjOn, "rollup": h.rollup,
		} {
			if len(v) > 0 {
				got[k] = string(v)
			}
		}
		if len(got) != len(tt.want) {
			t.Fatalf("%s: got %v, want %v", tt.name, got, tt.want)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Fatalf("%s: %s = %q, want %q", tt.name, k, got[k], v)
			}
		}
		wantExp := false
		for _, k := range []string{"expStream", "expLastSeq", "expLastMsgID", "expLastSubjSeq", "expLastSubjOn"} {
			wantExp = wantExp || tt.want[k] != ""
		}
		if h.hasExpectations != wantExp {
			t.Fatalf("%s: hasExpectations %v", tt.name, h.hasExpectations)
		}
	}
}

func TestParsePubHeaders_ZeroAllocs(t *testing.T) {
	// Not parallel: AllocsPerRun counts every allocation in the process.
	b := []byte("NATS/1.0\r\nNats-Msg-Id: abc\r\nNats-Expected-Last-Subject-Sequence: 7\r\nOther: x\r\n\r\n")
	if n := testing.AllocsPerRun(1000, func() { parsePubHeaders(b) }); n != 0 {
		t.Fatalf("parsePubHeaders allocates %v times", n)
	}
}

func TestParseSeq(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"18446744073709551615", 18446744073709551615, true},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},
		{"-1", 0, false},
		{"1x", 0, false},
		{"", 0, false},
		{" 1", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSeq([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseSeq(%q) = %d %v", tt.in, got, ok)
		}
	}
}

func FuzzParsePubHeaders(f *testing.F) {
	f.Add([]byte("NATS/1.0\r\nNats-Msg-Id: abc\r\n\r\n"))
	f.Add([]byte("NATS/1.0\nNats-Rollup:sub\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := parsePubHeaders(b)
		for _, v := range [][]byte{h.msgID, h.expStream, h.expLastSeq, h.expLastMsgID, h.expLastSubjSeq, h.expLastSubjOn, h.rollup} {
			if len(v) > 0 && (v[0] == ' ' || v[len(v)-1] == ' ') {
				t.Fatalf("untrimmed value %q", v)
			}
		}
		parseSeq(h.expLastSeq)
	})
}
