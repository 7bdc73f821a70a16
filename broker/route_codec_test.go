package broker

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
)

// encodeRouteMsg is the whole message frame: what forward sends one peer.
func encodeRouteMsg(m *Message, queues ...string) []byte {
	b := appendRouteMsg(nil, m)
	for _, q := range queues {
		b = appendRouteQueue(b, q)
	}
	return b
}

// queueList decodes the queue list of rm.
func queueList(rm *routeMsg) []string {
	var qs []string
	for q, rest, ok := nextQueue(rm.queues); ok; q, rest, ok = nextQueue(rest) {
		qs = append(qs, string(q))
	}
	return qs
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// The golden bytes pin the wire format: a change here breaks mixed-version
// clusters and needs a new routeCodecVersion.
func TestRouteCodec_Interest_Golden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		flags byte
		ops   []interestOp
		hex   string
	}{
		{
			name: "plain add",
			ops:  []interestOp{{Subject: []byte("foo.*"), Weight: 1}},
			// version, flags, len 5 "foo.*", len 0 queue, weight 1
			hex: "01 00 05 666f6f2e2a 00 01",
		},
		{
			name: "queue weight and removal",
			ops: []interestOp{
				{Subject: []byte("jobs.>"), Queue: []byte("w"), Weight: 300},
				{Subject: []byte("x"), Weight: 0},
			},
			hex: "01 00 06 6a6f62732e3e 01 77 ac02 01 78 00 00",
		},
		{
			name:  "empty full sync asking for the peer's",
			flags: interestReset | interestEnd | interestWant,
			hex:   "01 07",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := appendInterestHeader(nil, tt.flags)
			for _, op := range tt.ops {
				b = appendInterestOp(b, string(op.Subject), string(op.Queue), op.Weight)
			}
			want := mustHex(t, tt.hex)
			if !bytes.Equal(b, want) {
				t.Fatalf("encoded\n %x\nwant\n %x", b, want)
			}
			f, err := decodeInterest(want)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if f.Flags != tt.flags || len(f.Ops) != len(tt.ops) {
				t.Fatalf("decoded flags %#x, %d ops; want %#x, %d", f.Flags, len(f.Ops), tt.flags, len(tt.ops))
			}
			for i, op := range f.Ops {
				w := tt.ops[i]
				if !bytes.Equal(op.Subject, w.Subject) || !bytes.Equal(op.Queue, w.Queue) || op.Weight != w.Weight {
					t.Errorf("op %d = %q %q %d, want %q %q %d", i, op.Subject, op.Queue, op.Weight, w.Subject, w.Queue, w.Weight)
				}
			}
		})
	}
}

func TestRouteCodec_Msg_Golden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		m      Message
		queues []string
		hex    string
	}{
		{
			name: "plain",
			m:    Message{Subject: []byte("a.b"), Payload: []byte("hi")},
			// version, "a.b", no reply, no header, "hi", no queues
			hex: "01 03 612e62 00 00 02 6869",
		},
		{
			name:   "reply header and queues",
			m:      Message{Subject: []byte("s"), Reply: []byte("_I.1"), Header: []byte("NATS/1.0\r\n\r\n"), Payload: nil},
			queues: []string{"q1", "g"},
			hex:    "01 01 73 04 5f492e31 0c 4e4154532f312e300d0a0d0a 00 02 7131 01 67",
		},
		{
			name: "delivery target",
			m:    Message{Subject: []byte("s"), Target: []byte("_I.2"), Payload: []byte("x")},
			// version 2, target "_I.2", then the version 1 layout
			hex: "02 04 5f492e32 01 73 00 00 01 78",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := encodeRouteMsg(&tt.m, tt.queues...)
			want := mustHex(t, tt.hex)
			if !bytes.Equal(b, want) {
				t.Fatalf("encoded\n %x\nwant\n %x", b, want)
			}
			var rm routeMsg
			if err := decodeRouteMsg(want, &rm); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if string(rm.Target) != string(tt.m.Target) || string(rm.Subject) != string(tt.m.Subject) || string(rm.Reply) != string(tt.m.Reply) ||
				string(rm.Header) != string(tt.m.Header) || string(rm.Payload) != string(tt.m.Payload) {
				t.Errorf("decoded %q %q %q %q, want %q %q %q %q", rm.Subject, rm.Reply, rm.Header, rm.Payload,
					tt.m.Subject, tt.m.Reply, tt.m.Header, tt.m.Payload)
			}
			if (rm.Header == nil) != (tt.m.Header == nil) {
				t.Errorf("decoded header nil=%v, want nil=%v", rm.Header == nil, tt.m.Header == nil)
			}
			if got := queueList(&rm); !slices.Equal(got, tt.queues) {
				t.Errorf("queues = %q, want %q", got, tt.queues)
			}
		})
	}
}

func TestRouteCodec_Bad(t *testing.T) {
	t.Parallel()
	interest := []struct {
		name, hex string
	}{
		{"empty", ""},
		{"no flags", "01"},
		{"unknown version", "02 00"},
		{"unknown flag", "01 08"},
		{"truncated subject", "01 00 05 666f"},
		{"empty subject", "01 00 00 00 01"},
		{"missing weight", "01 00 01 78 00"},
		{"overlong uvarint", "01 00 ffffffffffffffffffff01"},
		{"length past end", "01 00 ffffffff0f 78"},
	}
	for _, tt := range interest {
		if _, err := decodeInterest(mustHex(t, tt.hex)); !errors.Is(err, errBadRouteFrame) {
			t.Errorf("decodeInterest(%s) = %v, want errBadRouteFrame", tt.name, err)
		}
	}
	msg := []struct {
		name, hex string
	}{
		{"empty", ""},
		{"unknown version", "09 01 61 00 00 00"},
		{"empty subject", "01 00 00 00 00"},
		{"truncated payload", "01 01 61 00 00 05 6869"},
		{"missing payload", "01 01 61 00 00"},
		{"empty queue name", "01 01 61 00 00 00 00"},
		{"truncated queue", "01 01 61 00 00 00 03 71"},
	}
	for _, tt := range msg {
		var rm routeMsg
		if err := decodeRouteMsg(mustHex(t, tt.hex), &rm); !errors.Is(err, errBadRouteFrame) {
			t.Errorf("decodeRouteMsg(%s) = %v, want errBadRouteFrame", tt.name, err)
		}
	}
}

func TestRouteCodec_WeightClamped(t *testing.T) {
	t.Parallel()
	b := appendInterestHeader(nil, 0)
	b = appendString(b, "x")
	b = appendString(b, "q")
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01) // 2^64-1
	f, err := decodeInterest(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Ops[0].Weight != maxRemoteWeight {
		t.Errorf("weight = %d, want %d", f.Ops[0].Weight, maxRemoteWeight)
	}
}

// The decoded fields alias the frame but must not let an append run over
// the rest of it.
func TestRouteCodec_FieldsCapacityClipped(t *testing.T) {
	t.Parallel()
	body := encodeRouteMsg(&Message{Subject: []byte("a"), Payload: []byte("p")}, "q")
	var rm routeMsg
	if err := decodeRouteMsg(body, &rm); err != nil {
		t.Fatal(err)
	}
	_ = append(rm.Payload, 'X')
	if got := queueList(&rm); !slices.Equal(got, []string{"q"}) {
		t.Errorf("queues after append to payload = %q", got)
	}
}

// FuzzDecodeRouteFrame feeds garbage to both decoders: they must never
// panic, and whatever decodes must re-encode to something that decodes the
// same.
func FuzzDecodeRouteFrame(f *testing.F) {
	f.Add(kindRouteInterest, mustHexF("01 07"))
	f.Add(kindRouteInterest, mustHexF("01 00 06 6a6f62732e3e 01 77 ac02 01 78 00 00"))
	f.Add(kindRouteMsg, mustHexF("01 01 73 04 5f492e31 0c 4e4154532f312e300d0a0d0a 00 02 7131 01 67"))
	f.Add(kindRouteMsg, mustHexF("01 03 612e62 00 00 02 6869"))
	f.Add(kindRouteMsg, []byte{})
	f.Fuzz(func(t *testing.T, kind byte, body []byte) {
		switch kind % 2 {
		case 0:
			fr, err := decodeInterest(body)
			if err != nil {
				return
			}
			b := appendInterestHeader(nil, fr.Flags)
			for _, op := range fr.Ops {
				b = appendInterestOp(b, string(op.Subject), string(op.Queue), op.Weight)
			}
			again, err := decodeInterest(b)
			if err != nil || again.Flags != fr.Flags || len(again.Ops) != len(fr.Ops) {
				t.Fatalf("re-decode of %x: %v (%d ops, want %d)", b, err, len(again.Ops), len(fr.Ops))
			}
			for i := range fr.Ops {
				a, w := again.Ops[i], fr.Ops[i]
				if !bytes.Equal(a.Subject, w.Subject) || !bytes.Equal(a.Queue, w.Queue) || a.Weight != w.Weight {
					t.Fatalf("op %d changed: %+v != %+v", i, a, w)
				}
			}
		default:
			var rm routeMsg
			if err := decodeRouteMsg(body, &rm); err != nil {
				return
			}
			qs := queueList(&rm)
			b := encodeRouteMsg(&Message{Subject: rm.Subject, Reply: rm.Reply, Header: rm.Header, Payload: rm.Payload}, qs...)
			var again routeMsg
			if err := decodeRouteMsg(b, &again); err != nil {
				t.Fatalf("re-decode of %x: %v", b, err)
			}
			if !bytes.Equal(again.Subject, rm.Subject) || !bytes.Equal(again.Reply, rm.Reply) ||
				!bytes.Equal(again.Header, rm.Header) || !bytes.Equal(again.Payload, rm.Payload) ||
				!slices.Equal(queueList(&again), qs) {
				t.Fatalf("message changed through re-encoding: %x -> %x", body, b)
			}
		}
	})
}

func mustHexF(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}
