package broker

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestStreamConfig_NormalizeDefaults(t *testing.T) {
	t.Parallel()
	// What nats.go sends for a minimal CreateStream (reference appendix A).
	in := `{"name":"S1","subjects":["s1.\u003e"],"retention":"limits","max_consumers":0,"max_msgs":0,"max_bytes":0,"discard":"old","max_age":0,"max_msgs_per_subject":0,"storage":"memory","num_replicas":0,"duplicate_window":5000000000,"compression":"none","allow_direct":false,"mirror_direct":false,"consumer_limits":{},"allow_atomic":true,"persist_mode":"default"}`
	var cfg StreamConfig
	if err := json.Unmarshal([]byte(in), &cfg); err != nil {
		t.Fatal(err)
	}
	if e := cfg.Normalize(); e != nil {
		t.Fatal(e)
	}
	got, _ := json.Marshal(cfg)
	// nats-server's normalized echo, minus its server metadata and the
	// flags we do not implement.
	want := `{"name":"S1","subjects":["s1.\u003e"],"retention":"limits","max_consumers":-1,"max_msgs":-1,"max_bytes":-1,"max_age":0,"max_msgs_per_subject":-1,"max_msg_size":-1,"discard":"old","storage":"memory","num_replicas":1,"duplicate_window":5000000000,"compression":"none","allow_direct":false,"mirror_direct":false,"sealed":false,"deny_delete":false,"deny_purge":false,"allow_rollup_hdrs":false,"consumer_limits":{}}`
	if string(got) != want {
		t.Fatalf("normalized\n got %s\nwant %s", got, want)
	}
	// Normalize is idempotent.
	again := cfg
	if e := again.Normalize(); e != nil || !again.Equal(cfg) {
		t.Fatalf("second normalize changed it: %v", e)
	}

	var empty StreamConfig
	empty.Name = "E"
	if e := empty.Normalize(); e != nil {
		t.Fatal(e)
	}
	if empty.Subjects[0] != "E" || empty.Duplicates != 2*time.Minute || empty.Storage != FileStorage ||
		empty.Retention != LimitsPolicy || empty.Discard != DiscardOld || empty.Replicas != 1 || empty.Compression != "none" {
		t.Fatalf("defaults %+v", empty)
	}
	short := StreamConfig{Name: "A", MaxAge: time.Second}
	if e := short.Normalize(); e != nil || short.Duplicates != time.Second {
		t.Fatalf("duplicate window capped by max_age: %v %v", short.Duplicates, e)
	}
}

func TestStreamConfig_NormalizeRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  StreamConfig
		code uint16
		desc string
	}{
		{"empty name", StreamConfig{}, JSErrStreamInvalidConfig, ""},
		{"dot in name", StreamConfig{Name: "a.b"}, JSErrStreamInvalidConfig, ""},
		{"star in name", StreamConfig{Name: "a*"}, JSErrStreamInvalidConfig, ""},
		{"gt in name", StreamConfig{Name: "a>"}, JSErrStreamInvalidConfig, ""},
		{"slash in name", StreamConfig{Name: "a/b"}, JSErrStreamInvalidConfig, ""},
		{"backslash in name", StreamConfig{Name: `a\b`}, JSErrStreamInvalidConfig, ""},
		{"space in name", StreamConfig{Name: "a b"}, JSErrStreamInvalidConfig, ""},
		{"tab in name", StreamConfig{Name: "a\tb"}, JSErrStreamInvalidConfig, ""},
		{"long name", StreamConfig{Name: strings.Repeat("n", 256)}, JSErrStreamInvalidConfig, "stream name is too long, maximum allowed is 255"},
		{"bad discard", StreamConfig{Name: "A", Discard: "sideways"}, JSErrStreamInvalidConfig, "invalid discard policy"},
		{"bad compression", StreamConfig{Name: "A", Compression: "zip"}, JSErrStreamInvalidConfig, "invalid compression"},
		{"replicas 6", StreamConfig{Name: "A", Replicas: 6}, JSErrStreamInvalidConfig, "maximum replicas is 5"},
		{"replicas -1", StreamConfig{Name: "A", Replicas: -1}, JSErrReplicasNegative, ""},
		{"negative max age", StreamConfig{Name: "A", MaxAge: -1}, JSErrStreamInvalidConfig, ""},
		{"tiny max age", StreamConfig{Name: "A", MaxAge: time.Millisecond}, JSErrStreamInvalidConfig, ""},
		{"window over age", StreamConfig{Name: "A", MaxAge: time.Second, Duplicates: time.Minute}, JSErrStreamInvalidConfig, "duplicates window can not be larger then max age"},
		{"invalid subject", StreamConfig{Name: "A", Subjects: []string{"a..b"}}, JSErrStreamInvalidConfig, "invalid subject"},
		{"duplicate subject", StreamConfig{Name: "A", Subjects: []string{"a", "a"}}, JSErrStreamInvalidConfig, "duplicate subjects detected"},
		{"capture all", StreamConfig{Name: "A", Subjects: []string{">"}}, JSErrStreamInvalidConfig, ""},
		{"js api", StreamConfig{Name: "A", Subjects: []string{"$JS.API.>"}}, JSErrStreamInvalidConfig, ""},
		{"rollup with deny purge", StreamConfig{Name: "A", AllowRollup: true, DenyPurge: true}, JSErrStreamInvalidConfig, ""},
		{"new per subject without new", StreamConfig{Name: "A", DiscardNewPer: true, MaxMsgsPerSubject: 1}, JSErrStreamInvalidConfig, ""},
		{"new per subject without limit", StreamConfig{Name: "A", DiscardNewPer: true, Discard: DiscardNew}, JSErrStreamInvalidConfig, ""},
		{"mirror", StreamConfig{Name: "A", Mirror: json.RawMessage(`{"name":"B"}`)}, JSErrBadRequest, "stream mirrors are not supported by this server"},
		{"sources", StreamConfig{Name: "A", Sources: json.RawMessage(`[{"name":"B"}]`)}, JSErrBadRequest, ""},
	}
	for _, tt := range tests {
		cfg := tt.cfg
		wantErrCode(t, tt.name, cfg.Normalize(), tt.code, tt.desc)
	}
	// Accepted edge cases.
	for _, cfg := range []StreamConfig{
		{Name: "all", Subjects: []string{">"}, NoAck: true},
		{Name: "events", Subjects: []string{"$JS.EVENT.>"}},
		{Name: "nullmirror", Mirror: json.RawMessage("null")},
		{Name: strings.Repeat("n", 255)},
	} {
		if e := cfg.Normalize(); e != nil {
			t.Fatalf("%s: %v", cfg.Name, e)
		}
	}
}

func TestStreamConfig_EnumJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{"retention":"bogus"}`, `{"discard":"x"}`, `{"storage":"disk"}`, `{"storage":7}`} {
		var cfg StreamConfig
		if err := json.Unmarshal([]byte(in), &cfg); err == nil {
			t.Fatalf("%s decoded", in)
		}
	}
	var cfg StreamConfig
	if err := json.Unmarshal([]byte(`{"retention":"workqueue","discard":"new","storage":"file","unknown_field":{"x":1}}`), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Retention != WorkQueuePolicy || cfg.Discard != DiscardNew || cfg.Storage != FileStorage {
		t.Fatalf("%+v", cfg)
	}
}

func TestStreamConfig_Equal(t *testing.T) {
	t.Parallel()
	base := StreamConfig{Name: "A", Subjects: []string{"a"}, Metadata: map[string]string{"k": "v"}}
	_ = base.Normalize()
	withServerMeta := base.clone()
	withServerMeta.Metadata["_nats.ver"] = "2.15.2"
	if !base.Equal(withServerMeta) {
		t.Fatal("server metadata keys must be ignored")
	}
	noMeta, emptyMeta := base.clone(), base.clone()
	noMeta.Metadata, emptyMeta.Metadata = nil, map[string]string{}
	if !noMeta.Equal(emptyMeta) {
		t.Fatal("nil and empty metadata differ")
	}
	other := base.clone()
	other.MaxMsgs = 5
	if base.Equal(other) {
		t.Fatal("different max_msgs equal")
	}
	other = base.clone()
	other.Metadata["k"] = "w"
	if base.Equal(other) {
		t.Fatal("different user metadata equal")
	}
}

func TestSubjectsOverlap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"a.*", "a.b", true},
		{"a.>", "a", false},
		{"a.>", "a.b.c", true},
		{"a.*", "a.b.c", false},
		{"*.b", "a.*", true},
		{">", "x.y", true},
		{"a.b", "a.b.c", false},
		{"a.*.c", "a.b.*", true},
		{"a.*.c", "a.b.d", false},
	}
	for _, tt := range tests {
		if got := SubjectsOverlap(tt.a, tt.b); got != tt.want {
			t.Errorf("overlap(%q, %q) = %v", tt.a, tt.b, got)
		}
		if got := SubjectsOverlap(tt.b, tt.a); got != tt.want {
			t.Errorf("overlap(%q, %q) = %v", tt.b, tt.a, got)
		}
	}
	subsets := []struct {
		s, super string
		want     bool
	}{
		{"a.b", "a.>", true},
		{"a.*", "a.>", true},
		{"a.>", "a.>", true},
		{"a.>", "a.*", false},
		{"a.*", "a.b", false},
		{"a", "a.>", false},
		{"x", ">", true},
	}
	for _, tt := range subsets {
		if got := subjectIsSubset(tt.s, tt.super); got != tt.want {
			t.Errorf("subset(%q, %q) = %v", tt.s, tt.super, got)
		}
	}
}

func TestFSM_ApplyStreamCreate(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	info := h.mustCreate(StreamConfig{Name: "ORDERS", Subjects: []string{"orders.*"}, Storage: MemoryStorage})
	if !info.DidCreate || !info.Created.Equal(testEpoch) || info.Config.Storage != MemoryStorage || info.Config.MaxMsgs != -1 {
		t.Fatalf("create info %+v", info)
	}
	if info.State != (StreamState{}) {
		t.Fatalf("empty state %+v", info.State)
	}
	h.mustPub("orders.1", nil, "x")

	// Idempotent: an equal config (after normalization) returns the
	// current info without creating anything.
	h.advance(time.Hour)
	again := h.mustCreate(StreamConfig{Name: "ORDERS", Subjects: []string{"orders.*"}, Storage: MemoryStorage, MaxMsgs: -1, Replicas: 1})
	if again.DidCreate || !again.Created.Equal(testEpoch) || again.State.Msgs != 1 {
		t.Fatalf("idempotent create %+v", again)
	}
	tests := []struct {
		name string
		cfg  StreamConfig
		code uint16
	}{
		{"different config", StreamConfig{Name: "ORDERS", Subjects: []string{"orders.*"}, MaxMsgs: 10}, JSErrStreamNameInUse},
		{"overlap", StreamConfig{Name: "O2", Subjects: []string{"orders.>"}}, JSErrSubjectOverlap},
		{"overlap literal", StreamConfig{Name: "O3", Subjects: []string{"x", "orders.7"}}, JSErrSubjectOverlap},
		{"bad name", StreamConfig{Name: "a.b"}, JSErrStreamInvalidConfig},
		{"sealed", StreamConfig{Name: "SEALED", Sealed: true}, JSErrStreamInvalidConfig},
	}
	for _, tt := range tests {
		wantErrCode(t, tt.name, apiErr(t, h.apply1(EncodeStreamCreate(tt.cfg, h.now))), tt.code, "")
	}
	// A config that is not even valid JSON for our types is a rejection
	// (10025), never a panic.
	bad := EncodeCommand(CmdStreamCreate, appendBytes(appendTime(nil, h.now), []byte(`{"name":"X","retention":"bogus"}`)))
	wantErrCode(t, "bad json", apiErr(t, h.apply1(bad)), JSErrInvalidJSON, "")
	if names := h.f.StreamNames(""); len(names) != 1 || names[0] != "ORDERS" {
		t.Fatalf("streams %v", names)
	}
}

func TestFSM_ApplyStreamUpdate(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "S", Subjects: []string{"s.*"}})
	h.mustCreate(StreamConfig{Name: "T", Subjects: []string{"t.*"}, DenyDelete: true})
	for i := range 10 {
		h.mustPub("s."+string(rune('a'+i%3)), nil, "xx")
	}
	// Shrinking limits applies them at once (oldest first, whatever the
	// discard policy), and new subjects take effect for capture.
	upd := StreamConfig{Name: "S", Subjects: []string{"s.*", "extra"}, MaxMsgs: 5, MaxMsgsPerSubject: 1, Discard: DiscardNew}
	res := h.apply1(EncodeStreamUpdate(upd, h.now))
	info, ok := res.(*StreamInfo)
	if !ok {
		t.Fatalf("update: %#v", res)
	}
	if info.Config.MaxMsgs != 5 || !info.Created.Equal(testEpoch) || info.DidCreate {
		t.Fatalf("updated info %+v", info)
	}
	// a: 1,4,7,10  b: 2,5,8  c: 3,6,9 -> one per subject: 8, 9, 10.
	if got := h.seqs("S"); len(got) != 3 || got[0] != 8 || got[2] != 10 {
		t.Fatalf("after shrink %v", got)
	}
	if name, ok := h.f.StreamForSubject([]byte("extra")); !ok || name != "S" {
		t.Fatalf("new subject not captured: %q", name)
	}
	tests := []struct {
		name string
		cfg  StreamConfig
		code uint16
		desc string
	}{
		{"missing", StreamConfig{Name: "NOPE"}, JSErrStreamNotFound, "stream not found"},
		{"storage", StreamConfig{Name: "S", Subjects: []string{"s.*"}, Storage: MemoryStorage}, JSErrStreamInvalidConfig, "stream configuration update can not change storage type"},
		{"overlap", StreamConfig{Name: "S", Subjects: []string{"t.x"}}, JSErrSubjectOverlap, ""},
		{"deny delete", StreamConfig{Name: "T", Subjects: []string{"t.*"}}, JSErrStreamInvalidConfig, "stream configuration update can not cancel deny message deletes"},
		{"invalid", StreamConfig{Name: "S", Replicas: 9}, JSErrStreamInvalidConfig, ""},
	}
	for _, tt := range tests {
		wantErrCode(t, tt.name, apiErr(t, h.apply1(EncodeStreamUpdate(tt.cfg, h.now))), tt.code, tt.desc)
	}
}
