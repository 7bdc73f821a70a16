package broker

import (
	"bytes"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/flotilla/flotilla/cluster"
)

func TestFSM_GetMsg(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "G", Subjects: []string{"g.>"}})
	h.mustCreate(StreamConfig{Name: "EMPTY"})
	withHdr := hdr("K", "v")
	for i, s := range []string{"g.a", "g.b", "g.a", "g.c.x", "g.b"} { // seqs 1..5
		var hd []byte
		if i == 1 {
			hd = withHdr
		}
		h.mustPub(s, hd, s+"-data")
		h.advance(time.Second)
	}
	tests := []struct {
		name string
		req  MsgGetRequest
		want uint64 // 0 = 10037
	}{
		{"seq", MsgGetRequest{Seq: 2}, 2},
		{"seq missing", MsgGetRequest{Seq: 9}, 0},
		{"last by subject", MsgGetRequest{LastFor: "g.a"}, 3},
		{"last by wildcard", MsgGetRequest{LastFor: "g.*"}, 5},
		{"last by deep wildcard", MsgGetRequest{LastFor: "g.c.>"}, 4},
		{"last missing", MsgGetRequest{LastFor: "g.none"}, 0},
		{"next by subject", MsgGetRequest{NextFor: "g.b"}, 2},
		{"next by subject from", MsgGetRequest{NextFor: "g.b", Seq: 3}, 5},
		{"next by subject exact", MsgGetRequest{NextFor: "g.a", Seq: 3}, 3},
		{"next by wildcard from", MsgGetRequest{NextFor: "g.>", Seq: 4}, 4},
		{"next none left", MsgGetRequest{NextFor: "g.a", Seq: 4}, 0},
	}
	for _, tt := range tests {
		m, e := h.f.GetMsg("G", tt.req)
		if tt.want == 0 {
			wantErrCode(t, tt.name, e, JSErrNoMessageFound, "no message found")
			if e.Code != 404 {
				t.Fatalf("%s: code %d", tt.name, e.Code)
			}
			continue
		}
		if e != nil || m.Seq != tt.want {
			t.Fatalf("%s: %+v %v, want seq %d", tt.name, m, e, tt.want)
		}
	}
	m, _ := h.f.GetMsg("G", MsgGetRequest{Seq: 2})
	want := &StoredMsg{Subject: "g.b", Seq: 2, Header: withHdr, Data: []byte("g.b-data"), Time: testEpoch.Add(time.Second)}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("message\n got %+v\nwant %+v", m, want)
	}
	if m, _ := h.f.GetMsg("G", MsgGetRequest{Seq: 1}); m.Header != nil {
		t.Fatalf("no header must read back as nil: %q", m.Header)
	}
	for _, bad := range []MsgGetRequest{{}, {LastFor: "g.a", Seq: 1}, {LastFor: "g.a", NextFor: "g.b"}, {LastFor: "g..a"}} {
		if _, e := h.f.GetMsg("G", bad); e == nil || e.ErrCode != JSErrBadRequest {
			t.Fatalf("%+v: %v", bad, e)
		}
	}
	if _, e := h.f.GetMsg("NOPE", MsgGetRequest{Seq: 1}); e == nil || e.ErrCode != JSErrStreamNotFound {
		t.Fatalf("missing stream: %v", e)
	}
	if _, e := h.f.GetMsg("EMPTY", MsgGetRequest{LastFor: "EMPTY"}); e == nil || e.ErrCode != JSErrNoMessageFound {
		t.Fatalf("empty stream: %v", e)
	}
}

func TestFSM_StreamForSubject(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "EXACT", Subjects: []string{"orders.new", "x"}})
	h.mustCreate(StreamConfig{Name: "STAR", Subjects: []string{"orders.*.shipped"}})
	h.mustCreate(StreamConfig{Name: "TAIL", Subjects: []string{"events.>"}})
	h.mustCreate(StreamConfig{Name: "MID", Subjects: []string{"a.*.c.>"}})
	tests := []struct {
		subject string
		want    string // "" = none
	}{
		{"orders.new", "EXACT"},
		{"x", "EXACT"},
		{"orders.42.shipped", "STAR"},
		{"orders.42", ""},
		{"orders.new.more", ""},
		{"events.a", "TAIL"},
		{"events.a.b.c", "TAIL"},
		{"events", ""},
		{"a.b.c.d", "MID"},
		{"a.b.c", ""},
		{"a.b.x.d", ""},
		{"events..a", ""},
		{"", ""},
		{"y", ""},
	}
	for _, tt := range tests {
		got, ok := h.f.StreamForSubject([]byte(tt.subject))
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("StreamForSubject(%q) = %q %v, want %q", tt.subject, got, ok, tt.want)
		}
	}
	if got := h.f.StreamNames(""); !reflect.DeepEqual(got, []string{"EXACT", "MID", "STAR", "TAIL"}) {
		t.Fatalf("names %v", got)
	}
	if got := h.f.StreamNames("orders.*.*"); !reflect.DeepEqual(got, []string{"STAR"}) {
		t.Fatalf("filtered names %v", got)
	}
	if got := h.f.StreamNames("orders.>"); !reflect.DeepEqual(got, []string{"EXACT", "STAR"}) {
		t.Fatalf("filtered names %v", got)
	}
	if got := h.f.StreamNames("nope"); len(got) != 0 || got == nil {
		t.Fatalf("no match must be an empty list: %#v", got)
	}
	infos := h.f.Streams()
	if len(infos) != 4 || infos[0].Config.Name != "EXACT" || infos[3].Config.Name != "TAIL" {
		t.Fatalf("streams %+v", infos)
	}
	// Results are copies: changing one does not change the FSM.
	infos[0].Config.Subjects[0] = "changed"
	if info, _ := h.f.StreamInfo("EXACT"); info.Config.Subjects[0] != "orders.new" {
		t.Fatal("StreamInfo shares the catalog's slices")
	}
}

func TestFSM_StreamForSubject_ZeroAllocs(t *testing.T) {
	// Not parallel: AllocsPerRun counts every allocation in the process.
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "STAR", Subjects: []string{"orders.*.shipped", "orders.new"}})
	h.mustCreate(StreamConfig{Name: "TAIL", Subjects: []string{"events.>"}})
	for _, s := range []string{"orders.42.shipped", "orders.new", "events.a.b", "nothing.here.at.all", "orders.42"} {
		subject := []byte(s)
		if n := testing.AllocsPerRun(1000, func() { h.f.StreamForSubject(subject) }); n != 0 {
			t.Fatalf("StreamForSubject(%q) allocates %v times", s, n)
		}
	}
}

func BenchmarkFSM_StreamForSubject(b *testing.B) {
	f := newBenchFSM(b)
	var cfgs []StreamConfig
	for i := range 100 {
		cfgs = append(cfgs, StreamConfig{Name: fmt.Sprintf("S%d", i), Subjects: []string{fmt.Sprintf("svc%d.*.events.>", i), fmt.Sprintf("kv%d.>", i)}})
	}
	for i, cfg := range cfgs {
		f.ApplyBatch([]cluster.Entry{{Index: uint64(i + 1), Data: EncodeStreamCreate(cfg, testEpoch)}})
	}
	hit, miss := []byte("svc42.eu.events.order.created"), []byte("orders.eu.created")
	b.ReportAllocs()
	for b.Loop() {
		f.StreamForSubject(hit)
		f.StreamForSubject(miss)
	}
}

func TestFSM_StreamSnapshotRestore(t *testing.T) {
	t.Parallel()
	a := newTestStreamFSM(t)
	a.mustCreate(StreamConfig{Name: "S", Subjects: []string{"s.>"}, MaxMsgsPerSubject: 3, Duplicates: time.Minute})
	a.mustCreate(StreamConfig{Name: "T", Subjects: []string{"t"}})
	for i := range 20 {
		a.mustPub("s."+string(rune('a'+i%4)), hdr("Nats-Msg-Id", string(rune('A'+i))), "data")
	}
	a.apply1(EncodeMsgDelete("S", 20))
	snap, err := a.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	b := newTestStreamFSM(t)
	b.mustCreate(StreamConfig{Name: "OLD", Subjects: []string{"old"}})
	if err := b.f.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.f.Streams(), b.f.Streams()) {
		t.Fatalf("state differs after restore:\n%+v\n%+v", a.f.Streams(), b.f.Streams())
	}
	if _, ok := b.f.StreamForSubject([]byte("old")); ok {
		t.Fatal("capture index kept a stream the snapshot does not have")
	}
	if name, ok := b.f.StreamForSubject([]byte("s.x")); !ok || name != "S" {
		t.Fatal("capture index not rebuilt")
	}
	// Both replicas continue identically from the snapshot's index, dedup
	// state included.
	b.idx, b.now = a.idx, a.now
	for _, h := range []*streamHarness{a, b} {
		acks := h.publish(
			PublishMsg{Subject: "s.a", Header: hdr("Nats-Msg-Id", "S")},
			PublishMsg{Subject: "s.z", Header: hdr("Nats-Msg-Id", "new")},
		)
		if acks[0] != (PubAck{Stream: "S", Seq: 19, Duplicate: true}) || acks[1].Seq != 21 {
			t.Fatalf("after restore %+v", acks)
		}
	}
	if !reflect.DeepEqual(a.f.Streams(), b.f.Streams()) {
		t.Fatal("replicas diverged after restore")
	}
}

func TestFSM_ReadsDuringApply(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "S", Subjects: []string{"s.>"}, MaxMsgs: 50})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if info, e := h.f.StreamInfo("S"); e != nil || info.State.Msgs > 50 {
					t.Errorf("info %+v %v", info, e)
					return
				}
				if _, e := h.f.GetMsg("S", MsgGetRequest{LastFor: "s.a"}); e != nil && e.ErrCode != JSErrNoMessageFound {
					t.Errorf("get: %v", e)
					return
				}
				h.f.StreamForSubject([]byte("s.a"))
				h.f.Streams()
			}
		}()
	}
	for range 50 {
		var msgs []PublishMsg
		for range 20 {
			msgs = append(msgs, PublishMsg{Subject: "s.a", Data: []byte("x")})
		}
		h.publish(msgs...)
	}
	close(stop)
	wg.Wait()
}
