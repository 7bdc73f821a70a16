package broker

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/storage"
)

// goldenTime is 0x0102030405060708 ns after the epoch, so its 8 bytes are
// easy to spot in the golden encodings.
var goldenTime = time.Unix(0, 0x0102030405060708).UTC()

// Golden bytes: every replica must decode every entry ever written, so a
// command's encoding may never change silently (stream_codec.go).
func TestStreamCodec_GoldenBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  []byte
		want string // hex, spaces ignored
	}{
		{
			"stream_create",
			EncodeStreamCreate(StreamConfig{Name: "S", MaxAge: 5}, goldenTime),
			"01 02 0102030405060708 " + hexLen(minimalConfigJSON) + hex.EncodeToString([]byte(minimalConfigJSON)),
		},
		{
			"stream_update",
			EncodeStreamUpdate(StreamConfig{Name: "S", MaxAge: 5}, goldenTime),
			"01 03 0102030405060708 " + hexLen(minimalConfigJSON) + hex.EncodeToString([]byte(minimalConfigJSON)),
		},
		{"stream_delete", EncodeStreamDelete("ORDERS"), "01 04 06 4f5244455253"},
		{
			"stream_purge",
			EncodeStreamPurge("S", PurgeRequest{Subject: "a.b", Seq: 300, Keep: 0}, goldenTime),
			"01 05 0102030405060708 01 53 03 612e62 ac02 00",
		},
		{"msg_delete", EncodeMsgDelete("S", 1<<20), "01 06 01 53 808040"},
		{
			"publish_batch",
			EncodePublishBatch(goldenTime, []PublishMsg{
				{Subject: "a", Data: []byte("hi")},
				{Subject: "b.c", Header: []byte("NATS/1.0\r\n\r\n"), Data: nil},
			}),
			"01 07 0102030405060708 02 " +
				"01 61 00 02 6869 " +
				"03 622e63 0c 4e4154532f312e300d0a0d0a 00",
		},
		{"publish_batch empty", EncodePublishBatch(goldenTime, nil), "01 07 0102030405060708 00"},
		{"expire", EncodeExpire(goldenTime), "01 08 0102030405060708"},
		{"expire zero time", EncodeExpire(time.Time{}), "01 08 0000000000000000"},
	}
	for _, tt := range tests {
		want, err := hex.DecodeString(strings.ReplaceAll(tt.want, " ", ""))
		if err != nil {
			t.Fatalf("%s: bad golden hex: %v", tt.name, err)
		}
		if !bytes.Equal(tt.got, want) {
			t.Errorf("%s:\n got % x\nwant % x", tt.name, tt.got, want)
		}
	}
}

// minimalConfigJSON is the encoding of StreamConfig{Name: "S", MaxAge: 5}
// (not normalized: the proposer's config travels as given).
const minimalConfigJSON = `{"name":"S","retention":"","max_consumers":0,"max_msgs":0,"max_bytes":0,"max_age":5,"max_msgs_per_subject":0,"discard":"","storage":"","num_replicas":0,"duplicate_window":0,"compression":"","allow_direct":false,"mirror_direct":false,"sealed":false,"deny_delete":false,"deny_purge":false,"allow_rollup_hdrs":false,"consumer_limits":{}}`

// hexLen is the hex of s's uvarint length prefix.
func hexLen(s string) string { return hex.EncodeToString(binary.AppendUvarint(nil, uint64(len(s)))) }

func TestStreamCodec_DecodeRoundTrip(t *testing.T) {
	t.Parallel()
	cfg := StreamConfig{Name: "S", Subjects: []string{"a.>"}}
	msgs := []PublishMsg{{Subject: "a.b", Header: hdr("Nats-Msg-Id", "1"), Data: []byte("data")}, {Subject: "a.c"}}
	tests := []struct {
		enc  []byte
		want any
	}{
		{EncodeStreamCreate(cfg, goldenTime), &streamConfigCmd{now: goldenTime, config: mustJSON(t, cfg)}},
		{EncodeStreamUpdate(cfg, goldenTime), &streamConfigCmd{now: goldenTime, config: mustJSON(t, cfg)}},
		{EncodeStreamDelete("S"), &streamDeleteCmd{name: "S"}},
		{EncodeStreamPurge("S", PurgeRequest{Subject: "a.b", Keep: 3}, goldenTime), &streamPurgeCmd{now: goldenTime, name: "S", req: PurgeRequest{Subject: "a.b", Keep: 3}}},
		{EncodeMsgDelete("S", 7), &msgDeleteCmd{name: "S", seq: 7}},
		{EncodePublishBatch(goldenTime, msgs), &publishBatchCmd{now: goldenTime, msgs: []pubMsg{
			{subject: []byte("a.b"), header: hdr("Nats-Msg-Id", "1"), data: []byte("data")},
			{subject: []byte("a.c")},
		}}},
		{EncodeExpire(goldenTime), &expireCmd{now: goldenTime}},
	}
	for _, tt := range tests {
		got, err := decodeStreamCommand(tt.enc)
		if err != nil {
			t.Fatalf("decode % x: %v", tt.enc, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Fatalf("decode\n got %#v\nwant %#v", got, tt.want)
		}
		// Every prefix is an error, never a panic or a silent success.
		for i := range len(tt.enc) - 1 {
			if _, err := decodeStreamCommand(tt.enc[:i]); err == nil {
				t.Fatalf("prefix %d of % x decoded", i, tt.enc)
			}
		}
		if _, err := decodeStreamCommand(append(bytes.Clone(tt.enc), 0)); !errors.Is(err, ErrBadCommand) {
			t.Fatalf("trailing byte accepted: %v", err)
		}
	}
	// Overlong uvarints are refused: one encoding per command.
	if _, err := decodeStreamCommand([]byte{1, byte(CmdMsgDelete), 0x81, 0x00, 'S', 7}); err == nil {
		t.Fatal("overlong length accepted")
	}
	// A count larger than the body could hold is refused before
	// allocating.
	huge := append(appendTime([]byte{1, byte(CmdPublishBatch)}, goldenTime), 0xff, 0xff, 0xff, 0xff, 0x0f)
	if _, err := decodeStreamCommand(huge); err == nil {
		t.Fatal("huge count accepted")
	}
	if _, err := decodeStreamCommand(EncodeCommand(CmdNoop, nil)); err == nil {
		t.Fatal("noop decoded as a stream command")
	}
}

func mustJSON(t *testing.T, cfg StreamConfig) []byte {
	t.Helper()
	cmd, err := decodeStreamConfigCmd(EncodeStreamCreate(cfg, goldenTime)[2:])
	if err != nil {
		t.Fatal(err)
	}
	return cmd.config
}

// FuzzDecodeStreamCommand: decoding garbage returns an error and never
// panics; whatever decodes re-encodes to the same bytes.
func FuzzDecodeStreamCommand(f *testing.F) {
	f.Add(EncodeStreamCreate(StreamConfig{Name: "S"}, goldenTime))
	f.Add(EncodeStreamDelete("S"))
	f.Add(EncodeStreamPurge("S", PurgeRequest{Subject: "a", Seq: 2}, goldenTime))
	f.Add(EncodeMsgDelete("S", 3))
	f.Add(EncodePublishBatch(goldenTime, []PublishMsg{{Subject: "a", Header: hdr("K", "v"), Data: []byte("d")}}))
	f.Add(EncodeExpire(goldenTime))
	f.Add([]byte{1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := decodeStreamCommand(b)
		if err != nil {
			return
		}
		var re []byte
		switch c := cmd.(type) {
		case *streamConfigCmd:
			re = appendBytes(appendTime(EncodeCommand(CommandType(b[1]), nil), c.now), c.config)
		case *streamDeleteCmd:
			re = EncodeStreamDelete(c.name)
		case *streamPurgeCmd:
			re = EncodeStreamPurge(c.name, c.req, c.now)
		case *msgDeleteCmd:
			re = EncodeMsgDelete(c.name, c.seq)
		case *publishBatchCmd:
			msgs := make([]PublishMsg, len(c.msgs))
			for i, m := range c.msgs {
				msgs[i] = PublishMsg{Subject: string(m.subject), Header: m.header, Data: m.data}
			}
			re = EncodePublishBatch(c.now, msgs)
		case *expireCmd:
			re = EncodeExpire(c.now)
		default:
			t.Fatalf("decoded to %T", cmd)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("round trip changed\n% x\n% x", b, re)
		}
	})
}

// FuzzApplyStreamCommand feeds arbitrary (well-framed) commands to an
// FSM: a business rejection is a result, and nothing but a framing error
// may panic.
func FuzzApplyStreamCommand(f *testing.F) {
	f.Add(EncodeStreamCreate(StreamConfig{Name: "S", Subjects: []string{"s.>"}, MaxMsgs: 3}, goldenTime))
	f.Add(EncodePublishBatch(goldenTime, []PublishMsg{{Subject: "s.a", Header: hdr("Nats-Msg-Id", "x", "Nats-Rollup", "all"), Data: []byte("d")}}))
	f.Add(EncodeStreamPurge("S", PurgeRequest{Subject: "s.*", Keep: 1}, goldenTime))
	f.Add(EncodeMsgDelete("S", 1))
	f.Add(EncodeStreamUpdate(StreamConfig{Name: "S", Subjects: []string{"s.>"}, MaxMsgsPerSubject: 1}, goldenTime))
	f.Add(EncodeExpire(goldenTime.Add(time.Hour)))
	f.Add(EncodeStreamDelete("S"))
	st, err := storage.Open(filepath.Join(f.TempDir(), "state.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	fsm := NewFSM(st, zap.NewNop())
	var idx uint64
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := decodeStreamCommand(b); err != nil {
			return // framing errors panic by design (fsm.go)
		}
		idx++
		fsm.ApplyBatch([]cluster.Entry{{Index: idx, Data: b}})
	})
}

func TestConsumerCodec_GoldenBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  []byte
		want string // hex, spaces ignored
	}{
		{"consumer_create", EncodeConsumerCreate(goldenTime, "S", "C", ActionCreate, []byte(`{}`)),
			"01 09 0102030405060708 01 53 01 43 06 637265617465 02 7b7d"},
		{"consumer_delete", EncodeConsumerDelete("S", "C"), "01 0a 01 53 01 43"},
		{"consumer_ops", encodeConsumerOps([]consumerOp{
			{kind: opDeliver, stream: "S", name: "C", gen: 9, streamSeq: 300, consSeq: 2, deliveries: 1, ts: 0x0102030405060708},
			{kind: opAck, stream: "S", name: "C", gen: 9, streamSeq: 1},
		}), "01 0b 02" +
			" 01 01 53 01 43 09 ac02 02 01 0102030405060708" +
			" 02 01 53 01 43 09 01 00 00 0000000000000000"},
	}
	for _, tt := range tests {
		want, err := hex.DecodeString(strings.ReplaceAll(tt.want, " ", ""))
		if err != nil {
			t.Fatalf("%s: bad golden hex: %v", tt.name, err)
		}
		if !bytes.Equal(tt.got, want) {
			t.Errorf("%s:\n got % x\nwant % x", tt.name, tt.got, want)
		}
	}
}

func TestConsumerCodec_RoundTripAndGarbage(t *testing.T) {
	t.Parallel()
	ops := []consumerOp{
		{kind: opDeliver, stream: "S", name: "C", gen: 9, streamSeq: 300, consSeq: 2, deliveries: 1, ts: 12345},
		{kind: opSkip, stream: "S", name: "C", gen: 9, streamSeq: 301, consSeq: 3},
		{kind: opDrop, stream: "T", name: "D", gen: 1, streamSeq: 1},
	}
	enc := encodeConsumerOps(ops)
	_, body, err := DecodeCommand(enc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeConsumerOps(body, nil)
	if err != nil || !reflect.DeepEqual(got, ops) {
		t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, got, ops)
	}
	create := EncodeConsumerCreate(goldenTime, "S", "C", ActionUpdate, []byte(`{"x":1}`))
	_, body, _ = DecodeCommand(create)
	cc, err := decodeConsumerCreateCmd(body)
	if err != nil || cc.stream != "S" || cc.name != "C" || cc.action != ActionUpdate || string(cc.config) != `{"x":1}` || !cc.now.Equal(goldenTime) {
		t.Fatalf("create round trip: %+v %v", cc, err)
	}
	// Every truncation, a bad op kind and trailing bytes fail cleanly.
	for i := range len(body) {
		if _, err := decodeConsumerCreateCmd(body[:i]); err == nil {
			t.Fatalf("truncated create at %d decoded", i)
		}
	}
	_, opsBody, _ := DecodeCommand(enc)
	for i := range len(opsBody) {
		if _, err := decodeConsumerOps(opsBody[:i], nil); err == nil {
			t.Fatalf("truncated ops at %d decoded", i)
		}
	}
	if _, err := decodeConsumerOps(append(bytes.Clone(opsBody), 0), nil); err == nil {
		t.Fatal("trailing byte accepted")
	}
	bad := bytes.Clone(opsBody)
	bad[1] = 9 // first op's kind
	if _, err := decodeConsumerOps(bad, nil); err == nil {
		t.Fatal("unknown op kind accepted")
	}
}
