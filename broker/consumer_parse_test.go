package broker

import (
	"strings"
	"testing"
)

func TestParseConsumerCreate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		op, arg    string
		body       string
		wantName   string // "*": generated
		wantAction ConsumerAction
		wantFilter string
	}{
		{
			name: "named, no filter (jetstream, jsm.go)",
			op:   "CONSUMER.CREATE", arg: "S1.QtcIoILk",
			body:     `{"stream_name":"S1","config":{"deliver_policy":"all","ack_policy":"explicit"},"action":"create"}`,
			wantName: "QtcIoILk", wantAction: ActionCreate,
		},
		{
			name: "durable with filter (appendix A)",
			op:   "CONSUMER.CREATE", arg: "S1.W.s1.work",
			body:     `{"stream_name":"S1","config":{"durable_name":"W","filter_subject":"s1.work"},"action":""}`,
			wantName: "W", wantFilter: "s1.work",
		},
		{
			name: "wildcard filter is all remaining tokens",
			op:   "CONSUMER.CREATE", arg: "ORDERS.501QQjnw.>",
			body:     `{"stream_name":"ORDERS","config":{"filter_subject":">"},"action":"create"}`,
			wantName: "501QQjnw", wantAction: ActionCreate, wantFilter: ">",
		},
		{
			name: "KV filter with $ and wildcard",
			op:   "CONSUMER.CREATE", arg: "KV_B1.9icYHDqR.$KV.B1.>",
			body:     `{"stream_name":"KV_B1","config":{"deliver_subject":"_INBOX.a","filter_subject":"$KV.B1.\u003e"}}`,
			wantName: "9icYHDqR", wantFilter: "$KV.B1.>",
		},
		{
			name: "filter_subjects without a subject filter",
			op:   "CONSUMER.CREATE", arg: "S.C",
			body:     `{"stream_name":"S","config":{"filter_subjects":["a","b"]},"action":"update"}`,
			wantName: "C", wantAction: ActionUpdate,
		},
		{
			name: "subject name overrides config name",
			op:   "CONSUMER.CREATE", arg: "S.C",
			body:     `{"stream_name":"S","config":{"name":"other"}}`,
			wantName: "C",
		},
		{
			name: "legacy ephemeral named in config",
			op:   "CONSUMER.CREATE", arg: "S",
			body:     `{"stream_name":"S","config":{"name":"E1","deliver_subject":"d"}}`,
			wantName: "E1",
		},
		{
			name: "legacy ephemeral without a name",
			op:   "CONSUMER.CREATE", arg: "S",
			body:     `{"stream_name":"S","config":{"deliver_subject":"d"}}`,
			wantName: "*",
		},
		{
			name: "legacy durable",
			op:   "CONSUMER.DURABLE.CREATE", arg: "S.D",
			body:     `{"stream_name":"S","config":{"durable_name":"D"}}`,
			wantName: "D",
		},
		{
			name: "unknown fields ignored",
			op:   "CONSUMER.CREATE", arg: "S.C",
			body:     `{"stream_name":"S","config":{"direct":false,"future":1},"pedantic":false}`,
			wantName: "C",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, e := ParseConsumerCreate(tt.op, tt.arg, []byte(tt.body))
			if e != nil {
				t.Fatalf("refused: %v", e)
			}
			if tt.wantName == "*" {
				if len(req.Name) != 8 || strings.Trim(req.Name, consumerNameAlphabet) != "" {
					t.Fatalf("generated name %q", req.Name)
				}
			} else if req.Name != tt.wantName {
				t.Fatalf("name %q, want %q", req.Name, tt.wantName)
			}
			if req.Config.Name != req.Name || req.Action != tt.wantAction || req.Config.FilterSubject != tt.wantFilter {
				t.Fatalf("got %+v", req)
			}
		})
	}
}

func TestParseConsumerCreate_GeneratedNamesDiffer(t *testing.T) {
	t.Parallel()
	body := []byte(`{"stream_name":"S","config":{}}`)
	a, _ := ParseConsumerCreate("CONSUMER.CREATE", "S", body)
	b, _ := ParseConsumerCreate("CONSUMER.CREATE", "S", body)
	if a == nil || b == nil || a.Name == b.Name {
		t.Fatalf("names %v %v", a, b)
	}
}

func TestParseConsumerCreate_Rejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		op, arg string
		body    string
		code    uint16
	}{
		{"unknown op", "CONSUMER.INFO", "S.C", `{"stream_name":"S"}`, JSErrBadRequest},
		{"empty body", "CONSUMER.CREATE", "S.C", ``, JSErrInvalidJSON},
		{"bad JSON", "CONSUMER.CREATE", "S.C", `{"stream_name":`, JSErrInvalidJSON},
		{"unknown action", "CONSUMER.CREATE", "S.C", `{"stream_name":"S","action":"upsert"}`, JSErrInvalidJSON},
		{"bad deliver policy", "CONSUMER.CREATE", "S.C", `{"stream_name":"S","config":{"deliver_policy":"first"}}`, JSErrInvalidJSON},
		{"no stream token", "CONSUMER.CREATE", "", `{"stream_name":""}`, JSErrBadRequest},
		{"stream mismatch", "CONSUMER.CREATE", "S.C", `{"stream_name":"T","config":{}}`, JSErrStreamMismatch},
		{"stream_name missing", "CONSUMER.CREATE", "S.C", `{"config":{}}`, JSErrStreamMismatch},
		{"durable create without durable token", "CONSUMER.DURABLE.CREATE", "S", `{"stream_name":"S","config":{"durable_name":"D"}}`, JSErrConsumerDurableNotInSubject},
		{"durable create with extra tokens", "CONSUMER.DURABLE.CREATE", "S.D.x", `{"stream_name":"S","config":{"durable_name":"D"}}`, JSErrConsumerDurableNotInSubject},
		{"durable create without durable_name", "CONSUMER.DURABLE.CREATE", "S.D", `{"stream_name":"S","config":{}}`, JSErrConsumerDurableNotSet},
		{"durable create mismatch", "CONSUMER.DURABLE.CREATE", "S.D", `{"stream_name":"S","config":{"durable_name":"E"}}`, JSErrConsumerDurableMismatch},
		{"durable mismatch", "CONSUMER.CREATE", "S.C", `{"stream_name":"S","config":{"durable_name":"D"}}`, JSErrConsumerDurableMismatch},
		{"legacy ephemeral with durable", "CONSUMER.CREATE", "S", `{"stream_name":"S","config":{"durable_name":"D"}}`, JSErrConsumerEphemeralWithDurable},
		{"filter mismatch", "CONSUMER.CREATE", "S.C.a.b", `{"stream_name":"S","config":{"filter_subject":"a.c"}}`, JSErrConsumerFilterMismatch},
		{"filter missing from config", "CONSUMER.CREATE", "S.C.a", `{"stream_name":"S","config":{}}`, JSErrConsumerFilterMismatch},
		{"filter with filter_subjects", "CONSUMER.CREATE", "S.C.a", `{"stream_name":"S","config":{"filter_subjects":["a"]}}`, JSErrConsumerMultipleFilters},
		{"backslash in name", "CONSUMER.CREATE", `S.a\b`, `{"stream_name":"S","config":{}}`, JSErrConsumerNamePathSeparators},
		{"slash in config name", "CONSUMER.CREATE", "S", `{"stream_name":"S","config":{"name":"a/b"}}`, JSErrConsumerNamePathSeparators},
		{"wildcard name token", "CONSUMER.CREATE", "S.*", `{"stream_name":"S","config":{}}`, JSErrStreamInvalidConfig},
		{"dotted config name", "CONSUMER.CREATE", "S", `{"stream_name":"S","config":{"name":"a.b"}}`, JSErrStreamInvalidConfig},
		{"empty name token", "CONSUMER.CREATE", "S.", `{"stream_name":"S","config":{}}`, JSErrStreamInvalidConfig},
		{"long name", "CONSUMER.CREATE", "S." + strings.Repeat("n", 256), `{"stream_name":"S","config":{}}`, JSErrConsumerNameTooLong},
		{"wildcard stream token", "CONSUMER.CREATE", "*.C", `{"stream_name":"*","config":{}}`, JSErrStreamNotFound},
		{"empty stream token", "CONSUMER.CREATE", ".C", `{"config":{}}`, JSErrStreamNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, e := ParseConsumerCreate(tt.op, tt.arg, []byte(tt.body))
			if e == nil {
				t.Fatalf("accepted %+v", req)
			}
			if e.ErrCode != tt.code {
				t.Fatalf("got %v, want %d", e, tt.code)
			}
		})
	}
}

// FuzzParseConsumerCreate checks that parsing (and normalizing what it
// accepts) never panics on garbage from the network, and that an
// accepted request always carries a valid name.
func FuzzParseConsumerCreate(f *testing.F) {
	seeds := []struct{ op, arg, body string }{
		{"CONSUMER.CREATE", "S1.W.s1.work", `{"stream_name":"S1","config":{"durable_name":"W","deliver_policy":"all","ack_policy":"explicit","ack_wait":5000000000,"max_deliver":3,"filter_subject":"s1.work","replay_policy":"instant","num_replicas":0},"action":""}`},
		{"CONSUMER.CREATE", "KV_B1.9icYHDqR.$KV.B1.>", `{"stream_name":"KV_B1","config":{"deliver_subject":"_INBOX.a","deliver_policy":"last_per_subject","ack_policy":"none","flow_control":true,"idle_heartbeat":5000000000,"filter_subject":"$KV.B1.>"}}`},
		{"CONSUMER.CREATE", "S", `{"stream_name":"S","config":{"opt_start_time":"2026-01-01T00:00:00Z","deliver_policy":"by_start_time"}}`},
		{"CONSUMER.DURABLE.CREATE", "S.D", `{"stream_name":"S","config":{"durable_name":"D","backoff":[1,2],"filter_subjects":["a",""]}}`},
		{"CONSUMER.CREATE", "S.C", `{"stream_name":"S","config":{"pause_until":"0001-01-01T00:00:00Z","metadata":{"a":"b"}},"action":"update"}`},
		{"CONSUMER.CREATE", "", ``},
		{"CONSUMER.CREATE", "..", `null`},
	}
	for _, s := range seeds {
		f.Add(s.op, s.arg, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, op, arg string, body []byte) {
		req, e := ParseConsumerCreate(op, arg, body)
		if e != nil {
			if req != nil || e.ErrCode == 0 || e.Description == "" {
				t.Fatalf("bad error result %v %v", req, e)
			}
			return
		}
		if !ValidConsumerName(req.Name) || req.Config.Name != req.Name {
			t.Fatalf("accepted invalid name %q", req.Name)
		}
		stream := &StreamConfig{Name: req.Stream, Subjects: []string{">"}, NoAck: true}
		if stream.Normalize() != nil {
			return
		}
		cfg := req.Config.clone()
		if cfg.Normalize(stream) != nil {
			return
		}
		again := cfg.clone()
		if e := again.Normalize(stream); e != nil || !SameConsumerConfig(&cfg, &again) {
			t.Fatalf("normalize not idempotent: %v", e)
		}
		if CheckConsumerUpdate(&cfg, &again) != nil {
			t.Fatal("an identical update was refused")
		}
	})
}
