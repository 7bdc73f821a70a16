package broker

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/storage"
)

// streamHarness drives an FSM on a real bbolt file with encoded commands,
// one Raft index per command, and a command clock it controls.
type streamHarness struct {
	t   *testing.T
	f   *FSM
	st  *storage.Store
	idx uint64
	now time.Time
}

var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestStreamFSM(t *testing.T) *streamHarness {
	t.Helper()
	f, st := newTestFSM(t)
	return &streamHarness{t: t, f: f, st: st, now: testEpoch}
}

func (h *streamHarness) advance(d time.Duration) { h.now = h.now.Add(d) }

// apply applies commands as one batch and returns their results.
func (h *streamHarness) apply(cmds ...[]byte) []any {
	h.t.Helper()
	entries := make([]cluster.Entry, len(cmds))
	for i, c := range cmds {
		h.idx++
		entries[i] = cluster.Entry{Index: h.idx, Term: 1, Data: c}
	}
	return h.f.ApplyBatch(entries)
}

func (h *streamHarness) apply1(cmd []byte) any {
	h.t.Helper()
	return h.apply(cmd)[0]
}

func (h *streamHarness) mustCreate(cfg StreamConfig) *StreamInfo {
	h.t.Helper()
	res := h.apply1(EncodeStreamCreate(cfg, h.now))
	info, ok := res.(*StreamInfo)
	if !ok || info == nil {
		h.t.Fatalf("create %s: %#v", cfg.Name, res)
	}
	return info
}

func (h *streamHarness) publish(msgs ...PublishMsg) []PubAck {
	h.t.Helper()
	acks, ok := h.apply1(EncodePublishBatch(h.now, msgs)).([]PubAck)
	if !ok || len(acks) != len(msgs) {
		h.t.Fatalf("publish result %#v", acks)
	}
	return acks
}

func (h *streamHarness) pub(subject string, hdr []byte, data string) PubAck {
	h.t.Helper()
	return h.publish(PublishMsg{Subject: subject, Header: hdr, Data: []byte(data)})[0]
}

// mustPub publishes and fails on a rejection; it returns the sequence.
func (h *streamHarness) mustPub(subject string, hdr []byte, data string) uint64 {
	h.t.Helper()
	ack := h.pub(subject, hdr, data)
	if ack.Error != nil || ack.Duplicate {
		h.t.Fatalf("publish %s: %+v %v", subject, ack, ack.Error)
	}
	return ack.Seq
}

func (h *streamHarness) state(name string) StreamState {
	h.t.Helper()
	info, e := h.f.StreamInfo(name)
	if e != nil {
		h.t.Fatalf("info %s: %v", name, e)
	}
	return info.State
}

// seqs returns the stored sequences of a stream, in order.
func (h *streamHarness) seqs(name string) []uint64 {
	h.t.Helper()
	var out []uint64
	_ = h.st.View(func(tx *storage.Tx) error {
		return tx.ForEach(newStreamBuckets(name).msgs, func(k, _ []byte) error {
			out = append(out, seqOf(k))
			return nil
		})
	})
	return out
}

// hdr builds a NATS header block from key/value pairs.
func hdr(kv ...string) []byte {
	var b strings.Builder
	b.WriteString("NATS/1.0\r\n")
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", kv[i], kv[i+1])
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

func wantErrCode(t *testing.T, what string, e *APIError, code uint16, desc string) {
	t.Helper()
	if e == nil {
		t.Fatalf("%s: no error, want %d", what, code)
	}
	if e.ErrCode != code || (desc != "" && e.Description != desc) {
		t.Fatalf("%s: error %d %q, want %d %q", what, e.ErrCode, e.Description, code, desc)
	}
}

func apiErr(t *testing.T, res any) *APIError {
	t.Helper()
	e, ok := res.(*APIError)
	if !ok {
		t.Fatalf("result %T %#v, want *APIError", res, res)
	}
	return e
}

func TestFSM_ApplyPublish_AssignsDenseSequences(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	h.mustCreate(StreamConfig{Name: "OTHER", Subjects: []string{"other"}})
	var batch []PublishMsg
	for i := range 500 {
		batch = append(batch, PublishMsg{Subject: fmt.Sprintf("orders.%d", i%7), Data: []byte("x")})
	}
	batch = append(batch, PublishMsg{Subject: "other", Data: []byte("y")}, PublishMsg{Subject: "nobody.here"})
	acks := h.publish(batch...)
	for i := range 500 {
		if acks[i] != (PubAck{Stream: "ORDERS", Seq: uint64(i + 1)}) {
			t.Fatalf("ack %d = %+v", i, acks[i])
		}
	}
	if acks[500] != (PubAck{Stream: "OTHER", Seq: 1}) {
		t.Fatalf("other ack %+v", acks[500])
	}
	// No stream captures it when applied: an error ack, not an apply error.
	wantErrCode(t, "no stream", acks[501].Error, JSErrStreamStoreFailed, "no stream matches subject")
	if acks[501].Stream != "" || acks[501].Error.Code != 503 {
		t.Fatalf("no-stream ack %+v", acks[501])
	}
	// A second batch continues the sequence.
	if seq := h.mustPub("orders.x", nil, "z"); seq != 501 {
		t.Fatalf("next seq %d", seq)
	}
	st := h.state("ORDERS")
	if st.Msgs != 501 || st.FirstSeq != 1 || st.LastSeq != 501 || st.NumSubjects != 8 || st.Bytes != 501*(8+1) {
		t.Fatalf("state %+v", st)
	}
	if !st.FirstTime.Equal(testEpoch) || !st.LastTime.Equal(testEpoch) {
		t.Fatalf("times %v %v", st.FirstTime, st.LastTime)
	}
}

func TestFSM_ApplyPublish_FirstSeqAndMonotonicTime(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	info := h.mustCreate(StreamConfig{Name: "S", FirstSeq: 100})
	if info.State.FirstSeq != 100 || info.State.LastSeq != 99 {
		t.Fatalf("empty state with first_seq: %+v", info.State)
	}
	if seq := h.mustPub("S", nil, "a"); seq != 100 {
		t.Fatalf("first seq %d", seq)
	}
	// A new leader whose clock is behind: stored times never go backwards.
	h.advance(-time.Minute)
	h.mustPub("S", nil, "b")
	if st := h.state("S"); !st.LastTime.Equal(testEpoch) {
		t.Fatalf("last time went back to %v", st.LastTime)
	}
}

func TestFSM_ApplyPublish_Dedup(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "S", Duplicates: time.Minute})
	id := hdr("Nats-Msg-Id", "m1")
	if seq := h.mustPub("S", id, "a"); seq != 1 {
		t.Fatal(seq)
	}
	h.mustPub("S", nil, "b")
	// Inside the window (command time): the original seq, not stored.
	h.advance(59 * time.Second)
	if ack := h.pub("S", id, "a"); ack != (PubAck{Stream: "S", Seq: 1, Duplicate: true}) {
		t.Fatalf("duplicate ack %+v", ack)
	}
	// Duplicates inside one batch too.
	acks := h.publish(PublishMsg{Subject: "S", Header: hdr("Nats-Msg-Id", "m2")}, PublishMsg{Subject: "S", Header: hdr("Nats-Msg-Id", "m2")})
	if acks[0].Seq != 3 || acks[0].Duplicate || acks[1] != (PubAck{Stream: "S", Seq: 3, Duplicate: true}) {
		t.Fatalf("in-batch dedup %+v", acks)
	}
	// After the window m1 is new again, even before an Expire pruned it.
	h.advance(time.Second)
	if seq := h.mustPub("S", id, "a"); seq != 4 {
		t.Fatalf("after window seq %d", seq)
	}
	// At +119.5s m2 (stored at +59s) is outside the window and m1 (+60s)
	// inside: Expire prunes exactly m2.
	h.advance(59*time.Second + 500*time.Millisecond)
	h.apply1(EncodeExpire(h.now))
	if ack := h.pub("S", id, "a"); !ack.Duplicate || ack.Seq != 4 {
		t.Fatalf("m1 after expire %+v", ack)
	}
	if ack := h.pub("S", hdr("Nats-Msg-Id", "m2"), ""); ack.Duplicate || ack.Seq != 5 {
		t.Fatalf("m2 after its window: %+v", ack)
	}
	h.advance(time.Hour)
	h.apply1(EncodeExpire(h.now))
	_ = h.st.View(func(tx *storage.Tx) error {
		b := newStreamBuckets("S")
		for _, name := range [][]byte{b.dedup, b.dedupSeq} {
			if k, _ := tx.Bucket(name).Cursor().First(); k != nil {
				t.Fatalf("%s not pruned: %q", name, k)
			}
		}
		return nil
	})
}

func TestFSM_ApplyPublish_ExpectedHeaders(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	h.mustPub("s.a", hdr("Nats-Msg-Id", "id1"), "1") // seq 1
	h.mustPub("s.b", nil, "2")                       // seq 2, last msg id now ""
	h.mustPub("s.a", hdr("Nats-Msg-Id", "id3"), "3") // seq 3
	tests := []struct {
		name    string
		subject string
		hdr     []byte
		code    uint16 // 0 = stored
		desc    string
	}{
		{"stream ok", "s.c", hdr("Nats-Expected-Stream", "S"), 0, ""},
		{"stream wrong", "s.c", hdr("Nats-Expected-Stream", "T"), JSErrStreamNotMatch, "expected stream does not match"},
		{"last seq ok", "s.c", hdr("Nats-Expected-Last-Sequence", "4"), 0, ""},
		{"last seq wrong", "s.c", hdr("Nats-Expected-Last-Sequence", "4"), JSErrWrongLastSequence, "wrong last sequence: 5"},
		{"last seq garbage", "s.c", hdr("Nats-Expected-Last-Sequence", "x"), JSErrWrongLastSequence, "wrong last sequence: 5"},
		{"last msg id wrong", "s.c", hdr("Nats-Expected-Last-Msg-Id", "id3"), JSErrWrongLastMsgID, "wrong last msg ID: "},
		{"subject seq ok", "s.a", hdr("Nats-Expected-Last-Subject-Sequence", "3"), 0, ""},
		{"subject seq wrong", "s.a", hdr("Nats-Expected-Last-Subject-Sequence", "3"), JSErrWrongLastSequence, "wrong last sequence: 6"},
		{"subject empty ok", "s.new", hdr("Nats-Expected-Last-Subject-Sequence", "0"), 0, ""},
		{"subject empty wrong", "s.new", hdr("Nats-Expected-Last-Subject-Sequence", "0"), JSErrWrongLastSequence, "wrong last sequence: 7"},
		{"other subject ok", "s.x", hdr("Nats-Expected-Last-Subject-Sequence", "2", "Nats-Expected-Last-Subject-Sequence-Subject", "s.b"), 0, ""},
		{"other subject wrong", "s.x", hdr("Nats-Expected-Last-Subject-Sequence", "1", "Nats-Expected-Last-Subject-Sequence-Subject", "s.b"), JSErrWrongLastSequence, "wrong last sequence: 2"},
		{"wildcard subject", "s.y", hdr("Nats-Expected-Last-Subject-Sequence", "8", "Nats-Expected-Last-Subject-Sequence-Subject", "s.*"), 0, ""},
		{"subject without seq", "s.y", hdr("Nats-Expected-Last-Subject-Sequence-Subject", "s.b"), JSErrExpectedSubjectNoSeq, ""},
		{"invalid subject header", "s.y", hdr("Nats-Expected-Last-Subject-Sequence", "0", "Nats-Expected-Last-Subject-Sequence-Subject", "s..b"), JSErrBadRequest, ""},
		{"msg id set", "s.c", hdr("Nats-Msg-Id", "id10"), 0, ""},
		{"last msg id ok", "s.c", hdr("Nats-Expected-Last-Msg-Id", "id10"), 0, ""},
		{"keys are case-sensitive", "s.c", hdr("nats-expected-stream", "T"), 0, ""},
	}
	for _, tt := range tests {
		ack := h.pub(tt.subject, tt.hdr, tt.name)
		if tt.code == 0 {
			if ack.Error != nil {
				t.Fatalf("%s: %v", tt.name, ack.Error)
			}
			continue
		}
		wantErrCode(t, tt.name, ack.Error, tt.code, tt.desc)
		if ack.Stream != "S" || ack.Seq != 0 {
			t.Fatalf("%s: ack %+v", tt.name, ack)
		}
	}
	if st := h.state("S"); st.LastSeq != 12 || st.Msgs != 12 {
		t.Fatalf("rejections stored something: %+v", st)
	}
	// A retried conditional publish that was stored gets its original
	// ack, not "wrong last sequence" (dedup is checked first).
	cond := hdr("Nats-Msg-Id", "kv-1", "Nats-Expected-Last-Subject-Sequence", "0")
	seq := h.mustPub("s.kv", cond, "v")
	if ack := h.pub("s.kv", cond, "v"); !ack.Duplicate || ack.Seq != seq {
		t.Fatalf("retry %+v", ack)
	}
}

func TestFSM_ApplyPublish_Rollup(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "R", Subjects: []string{"r.>"}, AllowRollup: true})
	h.mustCreate(StreamConfig{Name: "NR", Subjects: []string{"nr.>"}})
	for _, s := range []string{"r.a", "r.b", "r.a", "r.b", "r.a"} {
		h.mustPub(s, nil, "x")
	}
	seq := h.mustPub("r.a", hdr("Nats-Rollup", "sub"), "rolled")
	if got := h.seqs("R"); !reflect.DeepEqual(got, []uint64{2, 4, seq}) {
		t.Fatalf("after sub rollup %v", got)
	}
	if st := h.state("R"); st.Msgs != 3 || st.NumSubjects != 2 || st.FirstSeq != 2 || st.NumDeleted != 2 {
		t.Fatalf("state after sub rollup %+v", st)
	}
	seq = h.mustPub("r.c", hdr("Nats-Rollup", "all"), "all")
	if got := h.seqs("R"); !reflect.DeepEqual(got, []uint64{seq}) {
		t.Fatalf("after all rollup %v", got)
	}
	if st := h.state("R"); st.Msgs != 1 || st.FirstSeq != seq || st.NumSubjects != 1 || st.NumDeleted != 0 {
		t.Fatalf("state after all rollup %+v", st)
	}
	wantErrCode(t, "bad value", h.pub("r.a", hdr("Nats-Rollup", "everything"), "").Error, JSErrRollupFailed, `rollup value invalid: "everything"`)
	wantErrCode(t, "not allowed", h.pub("nr.a", hdr("Nats-Rollup", "sub"), "").Error, JSErrRollupFailed, "rollup not permitted")
}

func TestFSM_ApplyPublish_Limits(t *testing.T) {
	t.Parallel()
	// Each case publishes on "l.<subject>" in order and checks the acks'
	// error codes and the stored sequences.
	type pub struct {
		subject string
		data    string
		reason  string // "" = stored; else the 10077/10054 description
	}
	tests := []struct {
		name  string
		cfg   StreamConfig
		pubs  []pub
		want  []uint64
		bytes uint64
	}{
		{
			name: "max msgs discard old",
			cfg:  StreamConfig{MaxMsgs: 2},
			pubs: []pub{{"l.a", "1", ""}, {"l.a", "2", ""}, {"l.a", "3", ""}},
			want: []uint64{2, 3},
		},
		{
			name: "max msgs discard new",
			cfg:  StreamConfig{MaxMsgs: 2, Discard: DiscardNew},
			pubs: []pub{{"l.a", "1", ""}, {"l.a", "2", ""}, {"l.a", "3", "maximum messages exceeded"}},
			want: []uint64{1, 2},
		},
		{
			name:  "max bytes discard old",
			cfg:   StreamConfig{MaxBytes: 10}, // each message is 3+2 = 5 bytes
			pubs:  []pub{{"l.a", "11", ""}, {"l.b", "22", ""}, {"l.c", "33", ""}},
			want:  []uint64{2, 3},
			bytes: 10,
		},
		{
			name:  "max bytes discard new",
			cfg:   StreamConfig{MaxBytes: 10, Discard: DiscardNew},
			pubs:  []pub{{"l.a", "11", ""}, {"l.b", "22", ""}, {"l.c", "3", "maximum bytes exceeded"}},
			want:  []uint64{1, 2},
			bytes: 10,
		},
		{
			name:  "bigger than max bytes",
			cfg:   StreamConfig{MaxBytes: 10},
			pubs:  []pub{{"l.a", "11", ""}, {"l.a", "12345678", "maximum bytes exceeded"}},
			want:  []uint64{1},
			bytes: 5,
		},
		{
			name: "per subject discard old",
			cfg:  StreamConfig{MaxMsgsPerSubject: 2},
			pubs: []pub{{"l.a", "1", ""}, {"l.b", "1", ""}, {"l.a", "2", ""}, {"l.a", "3", ""}, {"l.b", "2", ""}},
			want: []uint64{2, 3, 4, 5},
		},
		{
			name: "per subject with discard new evicts old",
			cfg:  StreamConfig{MaxMsgsPerSubject: 1, Discard: DiscardNew},
			pubs: []pub{{"l.a", "1", ""}, {"l.a", "2", ""}},
			want: []uint64{2},
		},
		{
			name: "per subject discard new per subject",
			cfg:  StreamConfig{MaxMsgsPerSubject: 1, Discard: DiscardNew, DiscardNewPer: true},
			pubs: []pub{{"l.a", "1", ""}, {"l.a", "2", "maximum messages per subject exceeded"}, {"l.b", "1", ""}},
			want: []uint64{1, 2},
		},
		{
			name: "max msg size",
			cfg:  StreamConfig{MaxMsgSize: 3},
			pubs: []pub{{"l.a", "123", ""}, {"l.a", "1234", "message size exceeds maximum allowed"}},
			want: []uint64{1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTestStreamFSM(t)
			tt.cfg.Name, tt.cfg.Subjects = "L", []string{"l.>"}
			h.mustCreate(tt.cfg)
			for i, p := range tt.pubs {
				ack := h.pub(p.subject, nil, p.data)
				switch {
				case p.reason == "" && ack.Error != nil:
					t.Fatalf("pub %d: %v", i, ack.Error)
				case p.reason == "message size exceeds maximum allowed":
					wantErrCode(t, "pub", ack.Error, JSErrMessageTooBig, p.reason)
				case p.reason != "":
					wantErrCode(t, "pub", ack.Error, JSErrStreamStoreFailed, p.reason)
					if ack.Error.Code != 503 {
						t.Fatalf("code %d", ack.Error.Code)
					}
				}
			}
			if got := h.seqs("L"); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("stored %v, want %v", got, tt.want)
			}
			st := h.state("L")
			if st.Msgs != uint64(len(tt.want)) || st.FirstSeq != tt.want[0] {
				t.Fatalf("state %+v", st)
			}
			if tt.bytes != 0 && st.Bytes != tt.bytes {
				t.Fatalf("bytes %d, want %d", st.Bytes, tt.bytes)
			}
		})
	}
}

func TestFSM_ApplyPublish_RollupFreesRoomUnderDiscardNew(t *testing.T) {
	t.Parallel()
	// A KV bucket that is full still takes a purge (rollup) of a key.
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "KV", Subjects: []string{"kv.>"}, MaxMsgs: 2, Discard: DiscardNew, AllowRollup: true})
	h.mustPub("kv.a", nil, "1")
	h.mustPub("kv.b", nil, "1")
	wantErrCode(t, "full", h.pub("kv.c", nil, "1").Error, JSErrStreamStoreFailed, "maximum messages exceeded")
	seq := h.mustPub("kv.a", hdr("KV-Operation", "PURGE", "Nats-Rollup", "sub"), "")
	if got := h.seqs("KV"); !reflect.DeepEqual(got, []uint64{2, seq}) {
		t.Fatalf("stored %v", got)
	}
}

func TestFSM_ApplyPublish_MaxAge(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "A", MaxAge: 10 * time.Second})
	h.mustPub("A", nil, "1")
	h.advance(5 * time.Second)
	h.mustPub("A", nil, "2")
	h.advance(5 * time.Second)
	// Storing at +10s ages out the first message (10s old) first.
	h.mustPub("A", nil, "3")
	if got := h.seqs("A"); !reflect.DeepEqual(got, []uint64{2, 3}) {
		t.Fatalf("after publish %v", got)
	}
	// Expire does the same without a publish.
	h.advance(9 * time.Second)
	h.apply1(EncodeExpire(h.now))
	if got := h.seqs("A"); !reflect.DeepEqual(got, []uint64{3}) {
		t.Fatalf("after expire %v", got)
	}
	h.advance(time.Second)
	if res := h.apply1(EncodeExpire(h.now)); res != nil {
		t.Fatalf("expire result %v", res)
	}
	st := h.state("A")
	if st.Msgs != 0 || st.FirstSeq != 4 || st.LastSeq != 3 || !st.FirstTime.IsZero() || st.Bytes != 0 {
		t.Fatalf("state after everything expired %+v", st)
	}
}

func TestFSM_ApplyPublish_SealedAndHeaderLimits(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "S"})
	h.mustPub("S", nil, "1")
	big := hdr("Nats-Msg-Id", strings.Repeat("x", maxStoredKeyLen+1))
	wantErrCode(t, "long msg id", h.pub("S", big, "").Error, JSErrBadRequest, "")
	huge := hdr("X", strings.Repeat("x", maxHeaderLen))
	wantErrCode(t, "huge header", h.pub("S", huge, "").Error, JSErrHeaderTooBig, "")
	upd := StreamConfig{Name: "S", Sealed: true}
	info, ok := h.apply1(EncodeStreamUpdate(upd, h.now)).(*StreamInfo)
	if !ok || !info.Config.Sealed || !info.Config.DenyDelete || !info.Config.DenyPurge || info.Config.Discard != DiscardNew {
		t.Fatalf("seal: %#v", info)
	}
	wantErrCode(t, "publish sealed", h.pub("S", nil, "2").Error, JSErrStreamSealed, "invalid operation on sealed stream")
	wantErrCode(t, "purge sealed", apiErr(t, h.apply1(EncodeStreamPurge("S", PurgeRequest{}, h.now))), JSErrStreamSealed, "")
	wantErrCode(t, "delete sealed", apiErr(t, h.apply1(EncodeMsgDelete("S", 1))), JSErrStreamSealed, "")
	upd.Sealed = false
	wantErrCode(t, "unseal", apiErr(t, h.apply1(EncodeStreamUpdate(upd, h.now))), JSErrStreamInvalidConfig,
		"stream configuration update can not unseal a sealed stream")
}

func TestFSM_ApplyBatch_SkipsReplayedStreamEntries(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	create := EncodeStreamCreate(StreamConfig{Name: "S"}, h.now)
	pubs := EncodePublishBatch(h.now, []PublishMsg{{Subject: "S", Data: []byte("a")}, {Subject: "S", Data: []byte("b")}})
	h.apply(create, pubs)
	// Raft replays entries 1-2 after a restart: nothing is applied twice.
	res := h.f.ApplyBatch([]cluster.Entry{{Index: 1, Data: create}, {Index: 2, Data: pubs}})
	if res[0] != nil || res[1] != nil {
		t.Fatalf("replayed entries produced results %v", res)
	}
	if st := h.state("S"); st.Msgs != 2 || st.LastSeq != 2 {
		t.Fatalf("state after replay %+v", st)
	}
	// A reopened FSM on the same file sees the same streams.
	g := NewFSM(h.st, h.f.log)
	if name, ok := g.StreamForSubject([]byte("S")); !ok || name != "S" {
		t.Fatalf("capture after reopen: %q %v", name, ok)
	}
}

func TestFSM_ApplyBatch_CreateAndPublishInOneBatch(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	res := h.apply(
		EncodeStreamCreate(StreamConfig{Name: "S", Subjects: []string{"s"}}, h.now),
		EncodePublishBatch(h.now, []PublishMsg{{Subject: "s"}}),
		EncodeStreamDelete("S"),
		EncodePublishBatch(h.now, []PublishMsg{{Subject: "s"}}),
		EncodeStreamCreate(StreamConfig{Name: "S", Subjects: []string{"s"}}, h.now),
		EncodePublishBatch(h.now, []PublishMsg{{Subject: "s"}}),
	)
	if acks := res[1].([]PubAck); acks[0].Seq != 1 {
		t.Fatalf("publish after create in batch %+v", acks)
	}
	if acks := res[3].([]PubAck); acks[0].Error == nil {
		t.Fatalf("publish after delete in batch stored: %+v", acks)
	}
	if acks := res[5].([]PubAck); acks[0].Seq != 1 || acks[0].Error != nil {
		t.Fatalf("publish into recreated stream %+v", acks)
	}
	if st := h.state("S"); st.Msgs != 1 || st.LastSeq != 1 {
		t.Fatalf("recreated stream state %+v", st)
	}
}

func newBenchFSM(b *testing.B) *FSM {
	b.Helper()
	st, err := storage.Open(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return NewFSM(st, zap.NewNop())
}

// BenchmarkFSM_ApplyPublishBatch applies 500-message publish batches (one
// Raft entry, one transaction and fsync each) to one stream; ns/op and
// allocs/op are per batch, ns/msg per message.
func BenchmarkFSM_ApplyPublishBatch(b *testing.B) {
	for _, bc := range []struct {
		name     string
		subjects int
		hdr      []byte
	}{
		{"one_subject", 1, nil},
		{"1000_subjects", 1000, nil},
		{"msg_id", 1, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newBenchFSM(b)
			f.ApplyBatch([]cluster.Entry{{Index: 1, Data: EncodeStreamCreate(StreamConfig{Name: "B", Subjects: []string{"bench.>"}}, testEpoch)}})
			const batch = 500
			payload := bytes.Repeat([]byte("x"), 128)
			idx, n := uint64(1), 0
			cmds := make([][]byte, 0, 64)
			for range 64 { // pre-encode so the benchmark measures apply only
				msgs := make([]PublishMsg, batch)
				for i := range msgs {
					msgs[i] = PublishMsg{Subject: fmt.Sprintf("bench.%d", n%bc.subjects), Data: payload}
					if bc.name == "msg_id" {
						msgs[i].Header = hdr("Nats-Msg-Id", fmt.Sprintf("id-%d", n))
					}
					n++
				}
				cmds = append(cmds, EncodePublishBatch(testEpoch, msgs))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				idx++
				cmd := cmds[i%len(cmds)]
				i++
				if bc.name == "msg_id" && i > len(cmds) {
					b.StopTimer() // fresh ids: re-used ones would be duplicates
					msgs := make([]PublishMsg, batch)
					for j := range msgs {
						msgs[j] = PublishMsg{Subject: "bench.0", Header: hdr("Nats-Msg-Id", fmt.Sprintf("id-%d", n)), Data: payload}
						n++
					}
					cmd = EncodePublishBatch(testEpoch, msgs)
					b.StartTimer()
				}
				res := f.ApplyBatch([]cluster.Entry{{Index: idx, Data: cmd}})
				if acks := res[0].([]PubAck); acks[batch-1].Error != nil || acks[batch-1].Duplicate {
					b.Fatalf("%+v", acks[batch-1])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/msg")
		})
	}
}
