package broker

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestConsumerInfo_JSON(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 11, 29, 0, 51, 51, 695557312, time.UTC)
	cfg := ConsumerConfig{Durable: "W", FilterSubject: "s1.work", AckWait: 5 * time.Second, MaxDeliver: 3}
	if e := cfg.Normalize(newTestConsumerStream(t, "S1", "s1.>")); e != nil {
		t.Fatal(e)
	}
	info := ConsumerInfo{
		Stream: "S1", Name: "W", Created: created, Config: cfg,
		Delivered: SequenceInfo{Stream: 5}, AckFloor: SequenceInfo{Stream: 5},
		NumPending: 5, TimeStamp: created,
	}
	got, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	// nats-server's create response (appendix A) without its metadata.
	want := `{"stream_name":"S1","name":"W","created":"2026-11-29T00:51:51.695557312Z",` +
		`"config":{"durable_name":"W","name":"W","deliver_policy":"all","ack_policy":"explicit","ack_wait":5000000000,"max_deliver":3,"filter_subject":"s1.work","replay_policy":"instant","max_waiting":512,"max_ack_pending":1000,"num_replicas":0},` +
		`"delivered":{"consumer_seq":0,"stream_seq":5},"ack_floor":{"consumer_seq":0,"stream_seq":5},` +
		`"num_ack_pending":0,"num_redelivered":0,"num_waiting":0,"num_pending":5,"ts":"2026-11-29T00:51:51.695557312Z"}`
	if string(got) != want {
		t.Fatalf("info\n got %s\nwant %s", got, want)
	}

	last := created.Add(time.Second)
	info.Delivered = SequenceInfo{Consumer: 1, Stream: 6, Last: &last}
	info.PushBound = true
	info.Cluster = &ClusterInfo{Name: "c", Leader: "n1"}
	got, _ = json.Marshal(info)
	var back ConsumerInfo
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if !back.PushBound || back.Cluster.Leader != "n1" || !back.Delivered.Last.Equal(last) || !SameConsumerConfig(&back.Config, &info.Config) {
		t.Fatalf("round trip %s", got)
	}
}

func TestConsumerAction_JSON(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]ConsumerAction{`""`: ActionCreateOrUpdate, `"create"`: ActionCreate, `"update"`: ActionUpdate} {
		var a ConsumerAction
		if err := json.Unmarshal([]byte(body), &a); err != nil || a != want {
			t.Errorf("%s -> %q %v", body, a, err)
		}
	}
	for _, body := range []string{`"Create"`, `"delete"`, `1`, `null`} {
		var a ConsumerAction
		err := json.Unmarshal([]byte(body), &a)
		if body == `null` {
			// null reads as an absent action: create-or-update.
			if err != nil || a != ActionCreateOrUpdate {
				t.Errorf("null -> %q %v", a, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s accepted as %q", body, a)
		}
	}
}

// consumerCreatedByClient runs a nats.go-built create request through parse and
// normalize and decodes the resulting ConsumerInfo with nats.go's own
// jetstream type, as the client does with the create response.
func consumerCreatedByClient(t *testing.T, arg string, stream *StreamConfig, req any) jetstream.ConsumerInfo {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	parsed, e := ParseConsumerCreate("CONSUMER.CREATE", arg, body)
	if e != nil {
		t.Fatalf("parse %s: %v", body, e)
	}
	if e := parsed.Config.Normalize(stream); e != nil {
		t.Fatalf("normalize %s: %v", body, e)
	}
	now := time.Now().UTC()
	resp, err := json.Marshal(ConsumerInfo{Stream: stream.Name, Name: parsed.Name, Created: now, Config: parsed.Config, TimeStamp: now})
	if err != nil {
		t.Fatal(err)
	}
	var info jetstream.ConsumerInfo
	if err := json.Unmarshal(resp, &info); err != nil {
		t.Fatalf("nats.go cannot decode %s: %v", resp, err)
	}
	return info
}

// TestConsumerConfig_NatsGoRoundTrip checks that every field nats.go sends
// comes back in the echo as nats.go reads it (it detects unsupported
// features by their absence), with the server defaults filled in.
func TestConsumerConfig_NatsGoRoundTrip(t *testing.T) {
	t.Parallel()
	s1 := newTestConsumerStream(t, "S1", "s1.>")
	type request struct {
		Stream string                   `json:"stream_name"`
		Config jetstream.ConsumerConfig `json:"config"`
		Action string                   `json:"action"`
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sent := jetstream.ConsumerConfig{
		Durable: "D", Description: "d", DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
		AckPolicy: jetstream.AckAllPolicy, AckWait: 2 * time.Second, MaxDeliver: 5,
		BackOff: []time.Duration{2 * time.Second, 4 * time.Second}, FilterSubjects: []string{"s1.a", "s1.b.>"},
		ReplayPolicy: jetstream.ReplayOriginalPolicy, MaxAckPending: 10, HeadersOnly: true,
		MaxRequestBatch: 5, MaxRequestExpires: time.Second, MaxRequestMaxBytes: 100, InactiveThreshold: time.Minute,
		Replicas: 1, MemoryStorage: true, Metadata: map[string]string{"k": "v"},
	}
	info := consumerCreatedByClient(t, "S1.D", s1, request{Stream: "S1", Config: sent, Action: "create"})
	want := sent
	want.Name = "D"
	want.MaxWaiting = 512
	if !reflect.DeepEqual(info.Config, want) {
		t.Fatalf("echo\n got %+v\nwant %+v", info.Config, want)
	}
	if info.Name != "D" || info.Stream != "S1" {
		t.Fatalf("info %+v", info)
	}

	// The ordered consumer's config (§2.11), as nats.go builds it.
	ordered := jetstream.ConsumerConfig{
		Name: "r8kJ44OG9algLSebiOHjz3_1", DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckNonePolicy,
		FilterSubject: "s1.cc", InactiveThreshold: 5 * time.Minute, Replicas: 1, MemoryStorage: true,
	}
	info = consumerCreatedByClient(t, "S1.r8kJ44OG9algLSebiOHjz3_1.s1.cc", s1, request{Stream: "S1", Config: ordered})
	want = ordered
	want.MaxDeliver, want.MaxWaiting = -1, 512
	if !reflect.DeepEqual(info.Config, want) {
		t.Fatalf("ordered echo\n got %+v\nwant %+v", info.Config, want)
	}

	// The legacy API's KV watch (§2.12): ordered push with flow control.
	type legacyRequest struct {
		Stream string               `json:"stream_name"`
		Config *nats.ConsumerConfig `json:"config"`
	}
	kv := newTestConsumerStream(t, "KV_B1", "$KV.B1.>")
	watch := &nats.ConsumerConfig{
		DeliverSubject: "_INBOX.w", DeliverPolicy: nats.DeliverLastPerSubjectPolicy, AckPolicy: nats.AckNonePolicy,
		AckWait: 22 * time.Hour, MaxDeliver: 1, FilterSubject: "$KV.B1.>", ReplayPolicy: nats.ReplayInstantPolicy,
		FlowControl: true, Heartbeat: 5 * time.Second, HeadersOnly: true, Replicas: 1, MemoryStorage: true,
	}
	body, _ := json.Marshal(legacyRequest{Stream: "KV_B1", Config: watch})
	parsed, e := ParseConsumerCreate("CONSUMER.CREATE", "KV_B1.9icYHDqR.$KV.B1.>", body)
	if e != nil {
		t.Fatal(e)
	}
	if e := parsed.Config.Normalize(kv); e != nil {
		t.Fatal(e)
	}
	echo, _ := json.Marshal(parsed.Config)
	var back nats.ConsumerConfig
	if err := json.Unmarshal(echo, &back); err != nil {
		t.Fatal(err)
	}
	wantWatch := *watch
	wantWatch.Name, wantWatch.InactiveThreshold = "9icYHDqR", 5*time.Second
	if !reflect.DeepEqual(back, wantWatch) {
		t.Fatalf("watch echo\n got %+v\nwant %+v", back, wantWatch)
	}
}
