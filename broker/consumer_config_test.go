package broker

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// newTestConsumerStream is a normalized stream with the given subjects.
func newTestConsumerStream(t *testing.T, name string, subjects ...string) *StreamConfig {
	t.Helper()
	s := &StreamConfig{Name: name, Subjects: subjects}
	if e := s.Normalize(); e != nil {
		t.Fatalf("normalize stream: %v", e)
	}
	return s
}

// mustNormalizeCreate parses a captured create request body, normalizes its
// config and checks that a second Normalize changes nothing.
func mustNormalizeCreate(t *testing.T, op, arg, body string, stream *StreamConfig) ConsumerConfig {
	t.Helper()
	req, e := ParseConsumerCreate(op, arg, []byte(body))
	if e != nil {
		t.Fatalf("parse: %v", e)
	}
	cfg := req.Config
	if e := cfg.Normalize(stream); e != nil {
		t.Fatalf("normalize: %v", e)
	}
	again := cfg.clone()
	if e := again.Normalize(stream); e != nil || !SameConsumerConfig(&cfg, &again) {
		t.Fatalf("second normalize: %v\n first %+v\nsecond %+v", e, cfg, again)
	}
	return cfg
}

// TestConsumerConfig_NormalizeCaptured feeds the create bodies captured
// from stock clients (reference appendix A, §2.11, §2.12, §3.2) and
// compares the normalized echo with nats-server's (minus the metadata it
// adds for itself).
func TestConsumerConfig_NormalizeCaptured(t *testing.T) {
	t.Parallel()
	s1 := newTestConsumerStream(t, "S1", "s1.>")
	limited := newTestConsumerStream(t, "L", "l.>")
	limited.ConsumerLimits = StreamConsumerLimits{MaxAckPending: 200, InactiveThreshold: time.Minute}
	tests := []struct {
		name   string
		op     string
		arg    string
		body   string
		stream *StreamConfig
		want   string
	}{
		{
			name:   "nats.go durable pull with filter (appendix A)",
			op:     "CONSUMER.CREATE",
			arg:    "S1.W.s1.work",
			body:   `{"stream_name":"S1","config":{"durable_name":"W","deliver_policy":"all","ack_policy":"explicit","ack_wait":5000000000,"max_deliver":3,"filter_subject":"s1.work","replay_policy":"instant","num_replicas":0},"action":""}`,
			stream: s1,
			want:   `{"durable_name":"W","name":"W","deliver_policy":"all","ack_policy":"explicit","ack_wait":5000000000,"max_deliver":3,"filter_subject":"s1.work","replay_policy":"instant","max_waiting":512,"max_ack_pending":1000,"num_replicas":0}`,
		},
		{
			name:   "nats consumer add --pull --defaults (3.2)",
			op:     "CONSUMER.CREATE",
			arg:    "S1.C",
			body:   `{"stream_name":"S1","config":{"ack_policy":"explicit","deliver_policy":"all","durable_name":"C","name":"C","max_deliver":-1,"replay_policy":"instant","num_replicas":0,"pause_until":"0001-01-01T00:00:00Z"},"action":""}`,
			stream: s1,
			want:   `{"durable_name":"C","name":"C","deliver_policy":"all","ack_policy":"explicit","ack_wait":30000000000,"max_deliver":-1,"replay_policy":"instant","max_waiting":512,"max_ack_pending":1000,"num_replicas":0}`,
		},
		{
			name:   "ordered consumer (2.11)",
			op:     "CONSUMER.CREATE",
			arg:    "S1.r8kJ44OG9algLSebiOHjz3_1.s1.cc",
			body:   `{"stream_name":"S1","config":{"name":"r8kJ44OG9algLSebiOHjz3_1","deliver_policy":"all","ack_policy":"none","filter_subject":"s1.cc","replay_policy":"instant","inactive_threshold":300000000000,"num_replicas":1,"mem_storage":true},"action":""}`,
			stream: s1,
			want:   `{"name":"r8kJ44OG9algLSebiOHjz3_1","deliver_policy":"all","ack_policy":"none","max_deliver":-1,"filter_subject":"s1.cc","replay_policy":"instant","max_waiting":512,"inactive_threshold":300000000000,"num_replicas":1,"mem_storage":true}`,
		},
		{
			name:   "KV watch: legacy ordered push, no action (2.12)",
			op:     "CONSUMER.CREATE",
			arg:    "KV_B1.9icYHDqR.$KV.B1.>",
			body:   `{"stream_name":"KV_B1","config":{"deliver_subject":"_INBOX.x7Tq2","deliver_policy":"last_per_subject","ack_policy":"none","ack_wait":79200000000000,"max_deliver":1,"filter_subject":"$KV.B1.\u003e","replay_policy":"instant","flow_control":true,"idle_heartbeat":5000000000,"headers_only":true,"num_replicas":1,"mem_storage":true}}`,
			stream: newTestConsumerStream(t, "KV_B1", "$KV.B1.>"),
			want:   `{"name":"9icYHDqR","deliver_policy":"last_per_subject","ack_policy":"none","ack_wait":79200000000000,"max_deliver":1,"filter_subject":"$KV.B1.\u003e","replay_policy":"instant","flow_control":true,"headers_only":true,"deliver_subject":"_INBOX.x7Tq2","idle_heartbeat":5000000000,"inactive_threshold":5000000000,"num_replicas":1,"mem_storage":true}`,
		},
		{
			name:   "nats sub --stream: ephemeral pull on > (2.12)",
			op:     "CONSUMER.CREATE",
			arg:    "S1.QtcIoILk.>",
			body:   `{"stream_name":"S1","config":{"deliver_policy":"all","ack_policy":"none","filter_subject":">","replay_policy":"instant","num_replicas":0},"action":"create"}`,
			stream: s1,
			want:   `{"name":"QtcIoILk","deliver_policy":"all","ack_policy":"none","max_deliver":-1,"filter_subject":"\u003e","replay_policy":"instant","max_waiting":512,"inactive_threshold":5000000000,"num_replicas":0}`,
		},
		{
			name:   "nats bench js consume (3.3)",
			op:     "CONSUMER.CREATE",
			arg:    "L.nats-bench",
			body:   `{"stream_name":"L","config":{"durable_name":"nats-bench","deliver_policy":"all","ack_policy":"explicit","max_ack_pending":100,"inactive_threshold":10000000000,"replay_policy":"instant","num_replicas":0},"action":""}`,
			stream: limited,
			want:   `{"durable_name":"nats-bench","name":"nats-bench","deliver_policy":"all","ack_policy":"explicit","ack_wait":30000000000,"max_deliver":-1,"replay_policy":"instant","max_waiting":512,"max_ack_pending":100,"inactive_threshold":10000000000,"num_replicas":0}`,
		},
		{
			name:   "stream consumer limits fill the defaults",
			op:     "CONSUMER.CREATE",
			arg:    "L.E",
			body:   `{"stream_name":"L","config":{"ack_policy":"all"}}`,
			stream: limited,
			want:   `{"name":"E","deliver_policy":"all","ack_policy":"all","ack_wait":30000000000,"max_deliver":-1,"replay_policy":"instant","max_waiting":512,"max_ack_pending":200,"inactive_threshold":60000000000,"num_replicas":0}`,
		},
		{
			name:   "empty config: explicit ack, ephemeral defaults, deliver undefined reads as all",
			op:     "CONSUMER.CREATE",
			arg:    "S1.E",
			body:   `{"stream_name":"S1","config":{"deliver_policy":"undefined","filter_subjects":[]}}`,
			stream: s1,
			want:   `{"name":"E","deliver_policy":"all","ack_policy":"explicit","ack_wait":30000000000,"max_deliver":-1,"replay_policy":"instant","max_waiting":512,"max_ack_pending":1000,"inactive_threshold":5000000000,"num_replicas":0}`,
		},
		{
			name:   "backoff sets ack_wait; multiple filters; start time in UTC",
			op:     "CONSUMER.CREATE",
			arg:    "S1.B",
			body:   `{"stream_name":"S1","config":{"durable_name":"B","deliver_policy":"by_start_time","opt_start_time":"2026-01-02T03:04:05.5+02:00","ack_policy":"explicit","ack_wait":9000000000,"max_deliver":3,"backoff":[1000000000,2000000000],"filter_subjects":["s1.a","s1.b.*"],"replay_policy":"original","pause_until":"2030-01-01T01:00:00+01:00","metadata":{"k":"v"}}}`,
			stream: s1,
			want:   `{"durable_name":"B","name":"B","deliver_policy":"by_start_time","opt_start_time":"2026-01-02T01:04:05.5Z","ack_policy":"explicit","ack_wait":1000000000,"max_deliver":3,"backoff":[1000000000,2000000000],"filter_subjects":["s1.a","s1.b.*"],"replay_policy":"original","max_waiting":512,"max_ack_pending":1000,"num_replicas":0,"metadata":{"k":"v"},"pause_until":"2030-01-01T00:00:00Z"}`,
		},
		{
			name:   "negative values reset like nats-server",
			op:     "CONSUMER.CREATE",
			arg:    "S1.N",
			body:   `{"stream_name":"S1","config":{"durable_name":"N","ack_policy":"explicit","max_deliver":-5,"max_ack_pending":-7,"max_waiting":-1,"max_batch":-1,"max_expires":-1,"max_bytes":-1,"inactive_threshold":-1,"priority_policy":"none"}}`,
			stream: s1,
			want:   `{"durable_name":"N","name":"N","deliver_policy":"all","ack_policy":"explicit","ack_wait":30000000000,"max_deliver":-1,"replay_policy":"instant","max_waiting":512,"max_ack_pending":-1,"num_replicas":0}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := mustNormalizeCreate(t, tt.op, tt.arg, tt.body, tt.stream)
			got, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("normalized\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestConsumerConfig_NormalizeAckNoneOmitsAckWait(t *testing.T) {
	t.Parallel()
	cfg := ConsumerConfig{Name: "C", AckPolicy: AckNone}
	if e := cfg.Normalize(newTestConsumerStream(t, "S", "s.>")); e != nil {
		t.Fatal(e)
	}
	b, _ := json.Marshal(cfg)
	if strings.Contains(string(b), "ack_wait") || strings.Contains(string(b), "max_ack_pending") {
		t.Fatalf("ack none echo %s", b)
	}
}

func TestConsumerConfig_NormalizeRejects(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newTestConsumerStream(t, "S", "s.>", "t.*")
	r3 := newTestConsumerStream(t, "R3", "r.>")
	r3.Replicas = 3
	limited := newTestConsumerStream(t, "L", "l.>")
	limited.ConsumerLimits = StreamConsumerLimits{MaxAckPending: 10, InactiveThreshold: time.Second}
	push := func(c ConsumerConfig) ConsumerConfig { c.DeliverSubject = "deliver.x"; return c }
	tests := []struct {
		name   string
		cfg    ConsumerConfig
		stream *StreamConfig
		code   uint16
		desc   string
	}{
		// Unsupported features.
		{"ack flow_control", ConsumerConfig{Name: "C", AckPolicy: ackFlowControl}, s, JSErrBadRequest, "ack policy flow_control is not supported by this server"},
		{"push rate limit", push(ConsumerConfig{Name: "C", RateLimit: 1}), s, JSErrBadRequest, "consumer rate limits are not supported by this server"},
		{"pull rate limit", ConsumerConfig{Name: "C", RateLimit: 1}, s, JSErrConsumerPullWithRateLimit, "consumer in pull mode can not have rate limit set"},
		{"sample freq", ConsumerConfig{Name: "C", SampleFrequency: "50%"}, s, JSErrBadRequest, "consumer sampling is not supported by this server"},
		{"priority groups", ConsumerConfig{Name: "C", PriorityGroups: []string{"g"}, PriorityPolicy: "pinned_client"}, s, JSErrBadRequest, "consumer priority groups are not supported by this server"},
		{"priority policy", ConsumerConfig{Name: "C", PriorityPolicy: "overflow"}, s, JSErrBadRequest, ""},
		{"priority timeout", ConsumerConfig{Name: "C", PriorityTimeout: time.Second}, s, JSErrBadRequest, ""},
		// Names.
		{"bad name", ConsumerConfig{Name: "a.b"}, s, JSErrStreamInvalidConfig, `consumer name can not contain '.', '*', '>', '\', '/'`},
		{"bad durable", ConsumerConfig{Durable: "a*"}, s, JSErrStreamInvalidConfig, `consumer durable name can not contain '.', '*', '>', '\', '/'`},
		{"space in name", ConsumerConfig{Name: "a b"}, s, JSErrStreamInvalidConfig, ""},
		{"name and durable differ", ConsumerConfig{Name: "A", Durable: "B"}, s, JSErrConsumerDurableNameMismatch, "Consumer Durable and Name have to be equal if both are provided"},
		{"no name", ConsumerConfig{}, s, JSErrBadRequest, "consumer name is required"},
		{"long name", ConsumerConfig{Durable: strings.Repeat("n", 256)}, s, JSErrConsumerNameTooLong, "consumer name is too long, maximum allowed is 255"},
		{"long description", ConsumerConfig{Name: "C", Description: strings.Repeat("d", 4097)}, s, JSErrConsumerDescriptionTooLong, "consumer description is too long, maximum allowed is 4096"},
		{"big metadata", ConsumerConfig{Name: "C", Metadata: map[string]string{"k": strings.Repeat("v", 128<<10)}}, s, JSErrConsumerMetadataLength, "consumer metadata exceeds maximum size of 128KB"},
		// Policies.
		{"bad deliver policy", ConsumerConfig{Name: "C", DeliverPolicy: "sometimes"}, s, JSErrConsumerInvalidPolicy, ""},
		{"bad ack policy", ConsumerConfig{Name: "C", AckPolicy: "maybe"}, s, JSErrConsumerAckPolicyInvalid, "consumer ack policy invalid"},
		{"bad replay policy", ConsumerConfig{Name: "C", ReplayPolicy: "slow"}, s, JSErrConsumerReplayPolicyInvalid, "consumer replay policy invalid"},
		// Replicas.
		{"replicas over stream", ConsumerConfig{Name: "C", Replicas: 2}, s, JSErrConsumerReplicasExceedsStream, "consumer config replica count exceeds parent stream"},
		{"replicas negative", ConsumerConfig{Name: "C", Replicas: -1}, s, JSErrReplicasNegative, "replicas count cannot be negative"},
		// Acks.
		{"negative backoff", ConsumerConfig{Name: "C", BackOff: []time.Duration{time.Second, -1}}, s, JSErrConsumerBackOffNegative, "consumer backoff needs to be positive"},
		{"negative ack wait", ConsumerConfig{Name: "C", AckWait: -1}, s, JSErrConsumerAckWaitNegative, "consumer ack wait needs to be positive"},
		{"backoff longer than max deliver", ConsumerConfig{Name: "C", MaxDeliver: 2, BackOff: []time.Duration{1, 2, 3}}, s, JSErrConsumerMaxDeliverBackoff, "max deliver is required to be > length of backoff values"},
		{"max ack pending over stream limit", ConsumerConfig{Name: "C", MaxAckPending: 11}, limited, JSErrConsumerMaxPendingAckExcess, "consumer max ack pending exceeds system limit of 10"},
		{"inactive threshold over stream limit", ConsumerConfig{Name: "C", InactiveThreshold: 2 * time.Second}, limited, JSErrConsumerInactiveThresholdLimit, "consumer inactive threshold exceeds system limit of 1s"},
		// Pull-only rules.
		{"pull deliver group", ConsumerConfig{Name: "C", DeliverGroup: "q"}, s, JSErrBadRequest, "consumer deliver group requires a push based consumer"},
		{"pull heartbeat", ConsumerConfig{Name: "C", Heartbeat: time.Second}, s, JSErrConsumerHBRequiresPush, "consumer idle heartbeat requires a push based consumer"},
		{"pull flow control", ConsumerConfig{Name: "C", FlowControl: true}, s, JSErrConsumerFCRequiresPush, "consumer flow control requires a push based consumer"},
		{"pull tiny max expires", ConsumerConfig{Name: "C", MaxRequestExpires: time.Microsecond}, s, JSErrConsumerMaxRequestExpires, "consumer max request expires needs to be >= 1ms"},
		// Push-only rules.
		{"deliver to wildcard", ConsumerConfig{Name: "C", DeliverSubject: "d.*"}, s, JSErrConsumerDeliverToWildcards, "consumer deliver subject has wildcards"},
		{"invalid deliver subject", ConsumerConfig{Name: "C", DeliverSubject: "d..x"}, s, JSErrConsumerInvalidDeliverSubject, "invalid push consumer deliver subject"},
		{"deliver cycle", ConsumerConfig{Name: "C", DeliverSubject: "s.deliver"}, s, JSErrConsumerDeliverCycle, "consumer deliver subject forms a cycle"},
		{"deliver cycle on star", ConsumerConfig{Name: "C", DeliverSubject: "t.x"}, s, JSErrConsumerDeliverCycle, ""},
		{"push max waiting", push(ConsumerConfig{Name: "C", MaxWaiting: 1}), s, JSErrConsumerPushMaxWaiting, "consumer in push mode can not set max waiting"},
		{"push ack none max ack pending", push(ConsumerConfig{Name: "C", AckPolicy: AckNone, MaxAckPending: 5}), s, JSErrConsumerMaxPendingAckPolicy, "consumer requires ack policy for max ack pending"},
		{"push ack none with stream max ack pending", push(ConsumerConfig{Name: "C", AckPolicy: AckNone}), limited, JSErrConsumerMaxPendingAckPolicy, ""},
		{"small heartbeat", push(ConsumerConfig{Name: "C", Heartbeat: 99 * time.Millisecond}), s, JSErrConsumerSmallHeartbeat, "consumer idle heartbeat needs to be >= 100ms"},
		{"flow control without heartbeat", push(ConsumerConfig{Name: "C", FlowControl: true}), s, JSErrConsumerFCNeedsHeartbeats, "consumer with flow control also needs heartbeats"},
		// Filters.
		{"both filter forms", ConsumerConfig{Name: "C", FilterSubject: "s.a", FilterSubjects: []string{"s.b"}}, s, JSErrConsumerDuplicateFilters, "consumer cannot have both FilterSubject and FilterSubjects specified"},
		{"invalid filter", ConsumerConfig{Name: "C", FilterSubject: "s..a"}, s, JSErrStreamInvalidConfig, "invalid subject"},
		{"invalid filter in list", ConsumerConfig{Name: "C", FilterSubjects: []string{"s.>.a"}}, s, JSErrStreamInvalidConfig, "invalid subject"},
		{"empty filter in list", ConsumerConfig{Name: "C", FilterSubjects: []string{"s.a", ""}}, s, JSErrConsumerEmptyFilter, "consumer filter in FilterSubjects cannot be empty"},
		{"overlapping filters", ConsumerConfig{Name: "C", FilterSubjects: []string{"s.a", "s.*"}}, s, JSErrConsumerOverlappingFilters, "consumer subject filters cannot overlap"},
		{"duplicate filters", ConsumerConfig{Name: "C", FilterSubjects: []string{"s.a", "s.a"}}, s, JSErrConsumerOverlappingFilters, ""},
		{"filter outside stream", ConsumerConfig{Name: "C", FilterSubject: "u.a"}, s, JSErrConsumerFilterNotSubset, "consumer filter subject is not a valid subset of the interest subjects"},
		{"filter list outside stream", ConsumerConfig{Name: "C", FilterSubjects: []string{"s.a", "t.a.b"}}, s, JSErrConsumerFilterNotSubset, ""},
		// Start positions.
		{"all with seq", ConsumerConfig{Name: "C", OptStartSeq: 1}, s, JSErrConsumerInvalidPolicy, "consumer delivery policy is deliver all, but optional start sequence is also set"},
		{"all with time", ConsumerConfig{Name: "C", OptStartTime: &start}, s, JSErrConsumerInvalidPolicy, "consumer delivery policy is deliver all, but optional start time is also set"},
		{"last with seq", ConsumerConfig{Name: "C", DeliverPolicy: DeliverLast, OptStartSeq: 1}, s, JSErrConsumerInvalidPolicy, "consumer delivery policy is deliver last, but optional start sequence is also set"},
		{"new with time", ConsumerConfig{Name: "C", DeliverPolicy: DeliverNew, OptStartTime: &start}, s, JSErrConsumerInvalidPolicy, "consumer delivery policy is deliver new, but optional start time is also set"},
		{"last per subject with seq", ConsumerConfig{Name: "C", DeliverPolicy: DeliverLastPerSubject, FilterSubject: "s.>", OptStartSeq: 1}, s, JSErrConsumerInvalidPolicy, "consumer delivery policy is deliver last per subject, but optional start sequence is also set"},
		{"last per subject without filter", ConsumerConfig{Name: "C", DeliverPolicy: DeliverLastPerSubject}, s, JSErrConsumerInvalidPolicy, "consumer delivery policy is deliver last per subject, but optional filter subject is not set"},
		{"by seq without seq", ConsumerConfig{Name: "C", DeliverPolicy: DeliverByStartSequence}, s, JSErrConsumerInvalidPolicy, "consumer delivery policy is deliver by start sequence, but optional start sequence is not set"},
		{"by seq with time", ConsumerConfig{Name: "C", DeliverPolicy: DeliverByStartSequence, OptStartSeq: 1, OptStartTime: &start}, s, JSErrConsumerInvalidPolicy, "consumer delivery policy is deliver by start sequence, but optional start time is also set"},
		{"by time without time", ConsumerConfig{Name: "C", DeliverPolicy: DeliverByStartTime}, s, JSErrConsumerInvalidPolicy, "consumer delivery policy is deliver by start time, but optional start time is not set"},
		{"by time with seq", ConsumerConfig{Name: "C", DeliverPolicy: DeliverByStartTime, OptStartTime: &start, OptStartSeq: 1}, s, JSErrConsumerInvalidPolicy, "consumer delivery policy is deliver by start time, but optional start start sequence is also set"}, // sic, nats-server's text
		{"replicas over a replicated stream", ConsumerConfig{Name: "C", Replicas: 4}, r3, JSErrConsumerReplicasExceedsStream, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg.clone()
			e := cfg.Normalize(tt.stream)
			if e == nil {
				t.Fatalf("accepted %+v", cfg)
			}
			if e.ErrCode != tt.code || (tt.desc != "" && e.Description != tt.desc) {
				t.Fatalf("got %d %q, want %d %q", e.ErrCode, e.Description, tt.code, tt.desc)
			}
		})
	}
}

func TestConsumerConfig_NormalizeAccepts(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newTestConsumerStream(t, "S", "s.>", "t.*")
	r3 := newTestConsumerStream(t, "R3", "r.>")
	r3.Replicas = 3
	tests := []struct {
		name   string
		cfg    ConsumerConfig
		stream *StreamConfig
	}{
		{"replicas as stream", ConsumerConfig{Name: "C", Replicas: 3}, r3},
		{"replicas below stream", ConsumerConfig{Name: "C", Replicas: 1}, r3},
		{"ordered mem r1", ConsumerConfig{Name: "C", AckPolicy: AckNone, MemoryStorage: true, Replicas: 1}, s},
		{"by seq", ConsumerConfig{Name: "C", DeliverPolicy: DeliverByStartSequence, OptStartSeq: 7}, s},
		{"by time", ConsumerConfig{Name: "C", DeliverPolicy: DeliverByStartTime, OptStartTime: &start}, s},
		{"last per subject with filters", ConsumerConfig{Name: "C", DeliverPolicy: DeliverLastPerSubject, FilterSubjects: []string{"s.a", "t.b"}}, s},
		{"filters sharing subjects but neither a subset", ConsumerConfig{Name: "C", FilterSubjects: []string{"s.a.*", "s.*.b"}}, s},
		{"filter wider than the stream", ConsumerConfig{Name: "C", FilterSubject: ">"}, s},
		{"filter on a star stream subject", ConsumerConfig{Name: "C", FilterSubject: "t.x"}, s},
		{"backoff within max deliver", ConsumerConfig{Name: "C", MaxDeliver: 2, BackOff: []time.Duration{time.Second, 2 * time.Second}}, s},
		{"replay original", ConsumerConfig{Name: "C", ReplayPolicy: ReplayOriginal}, s},
		{"push queue group with heartbeat", ConsumerConfig{Name: "C", DeliverSubject: "d.x", DeliverGroup: "q", Heartbeat: time.Second, FlowControl: true}, s},
		{"push ack none without max ack pending", ConsumerConfig{Name: "C", DeliverSubject: "d.x", AckPolicy: AckNone}, s},
		{"pull request caps", ConsumerConfig{Name: "C", MaxRequestBatch: 10, MaxRequestExpires: time.Millisecond, MaxRequestMaxBytes: 1024}, s},
		{"ack none with backoff", ConsumerConfig{Name: "C", AckPolicy: AckNone, BackOff: []time.Duration{time.Second}}, s},
		{"server metadata", ConsumerConfig{Name: "C", Metadata: map[string]string{"_nats.ver": "2.15.2"}}, s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg.clone()
			if e := cfg.Normalize(tt.stream); e != nil {
				t.Fatalf("refused: %v", e)
			}
			again := cfg.clone()
			if e := again.Normalize(tt.stream); e != nil || !SameConsumerConfig(&cfg, &again) {
				t.Fatalf("not idempotent: %v", e)
			}
		})
	}
}

// TestConsumerConfig_NormalizeDoesNotAlias checks that the normalized
// times are copies: the FSM keeps the config, the request is discarded.
func TestConsumerConfig_NormalizeDoesNotAlias(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 3600))
	cfg := ConsumerConfig{Name: "C", DeliverPolicy: DeliverByStartTime, OptStartTime: &start}
	if e := cfg.Normalize(newTestConsumerStream(t, "S", "s.>")); e != nil {
		t.Fatal(e)
	}
	if cfg.OptStartTime == &start || cfg.OptStartTime.Location() != time.UTC || !cfg.OptStartTime.Equal(start) {
		t.Fatalf("opt_start_time %v", cfg.OptStartTime)
	}
}

func TestConsumerConfig_Helpers(t *testing.T) {
	t.Parallel()
	c := ConsumerConfig{}
	if c.IsPush() || c.IsDurable() || c.Filters() != nil {
		t.Fatal("zero config")
	}
	c = ConsumerConfig{Durable: "D", DeliverSubject: "d", FilterSubject: "a"}
	if !c.IsPush() || !c.IsDurable() || len(c.Filters()) != 1 || c.Filters()[0] != "a" {
		t.Fatal("single filter")
	}
	c = ConsumerConfig{FilterSubjects: []string{"a", "b"}}
	if f := c.Filters(); len(f) != 2 || f[1] != "b" {
		t.Fatalf("filters %v", f)
	}
	for name, want := range map[string]bool{
		"C": true, "r8kJ44OG9algLSebiOHjz3_1": true, "nats-bench": true, strings.Repeat("n", 255): true,
		"": false, "a.b": false, "a*": false, "a>": false, "a/b": false, `a\b`: false, "a b": false, "a\tb": false,
		strings.Repeat("n", 256): false,
	} {
		if ValidConsumerName(name) != want {
			t.Errorf("ValidConsumerName(%q) = %v", name, !want)
		}
	}
}

func TestConsumerConfig_EnumJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		ok   bool
	}{
		{`{"deliver_policy":"last_per_subject"}`, true},
		{`{"deliver_policy":"undefined"}`, true},
		{`{"deliver_policy":""}`, true},
		{`{"deliver_policy":"first"}`, false},
		{`{"deliver_policy":1}`, false},
		{`{"ack_policy":"all"}`, true},
		{`{"ack_policy":"flow_control"}`, true}, // refused by Normalize, not as JSON
		{`{"ack_policy":"some"}`, false},
		{`{"replay_policy":"original"}`, true},
		{`{"replay_policy":"fast"}`, false},
	}
	for _, tt := range tests {
		var c ConsumerConfig
		err := json.Unmarshal([]byte(tt.body), &c)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.body, err)
		}
	}
	var c ConsumerConfig
	if err := json.Unmarshal([]byte(`{"deliver_policy":"undefined"}`), &c); err != nil || c.DeliverPolicy != DeliverAll {
		t.Fatalf("undefined -> %q %v", c.DeliverPolicy, err)
	}
}

// mustNormalizedConsumer returns cfg normalized against a plain stream, or fails.
func mustNormalizedConsumer(t *testing.T, cfg ConsumerConfig) *ConsumerConfig {
	t.Helper()
	if e := cfg.Normalize(newTestConsumerStream(t, "S", "s.>", "t.>")); e != nil {
		t.Fatalf("normalize %+v: %v", cfg, e)
	}
	return &cfg
}

func TestCheckConsumerUpdate(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	later := start.Add(time.Hour)
	base := ConsumerConfig{Durable: "D", FilterSubject: "s.a"}
	pushBase := ConsumerConfig{Durable: "D", DeliverSubject: "d.x", Heartbeat: time.Second}
	seqBase := ConsumerConfig{Durable: "D", DeliverPolicy: DeliverByStartSequence, OptStartSeq: 5}
	timeBase := ConsumerConfig{Durable: "D", DeliverPolicy: DeliverByStartTime, OptStartTime: &start}
	with := func(c ConsumerConfig, f func(*ConsumerConfig)) ConsumerConfig { c = c.clone(); f(&c); return c }
	tests := []struct {
		name      string
		cur, next ConsumerConfig
		code      uint16 // 0: allowed
		desc      string
	}{
		{"identical", base, base, 0, ""},
		{"ack wait", base, with(base, func(c *ConsumerConfig) { c.AckWait = time.Minute }), 0, ""},
		{"max deliver", base, with(base, func(c *ConsumerConfig) { c.MaxDeliver = 5 }), 0, ""},
		{"backoff", base, with(base, func(c *ConsumerConfig) { c.BackOff = []time.Duration{time.Second} }), 0, ""},
		{"max ack pending", base, with(base, func(c *ConsumerConfig) { c.MaxAckPending = 5 }), 0, ""},
		{"filter subject", base, with(base, func(c *ConsumerConfig) { c.FilterSubject = "s.b" }), 0, ""},
		{"filter subjects", base, with(base, func(c *ConsumerConfig) { c.FilterSubject, c.FilterSubjects = "", []string{"s.a", "t.b"} }), 0, ""},
		{"description", base, with(base, func(c *ConsumerConfig) { c.Description = "new" }), 0, ""},
		{"inactive threshold", base, with(base, func(c *ConsumerConfig) { c.InactiveThreshold = time.Hour }), 0, ""},
		{"metadata", base, with(base, func(c *ConsumerConfig) { c.Metadata = map[string]string{"k": "v"} }), 0, ""},
		{"headers only", base, with(base, func(c *ConsumerConfig) { c.HeadersOnly = true }), 0, ""},
		{"pull caps", base, with(base, func(c *ConsumerConfig) {
			c.MaxRequestBatch, c.MaxRequestExpires, c.MaxRequestMaxBytes = 1, time.Second, 1
		}), 0, ""},
		{"replicas", base, with(base, func(c *ConsumerConfig) { c.Replicas = 1 }), 0, ""},
		{"deliver subject push to push", pushBase, with(pushBase, func(c *ConsumerConfig) { c.DeliverSubject = "d.y" }), 0, ""},
		{"deliver group", pushBase, with(pushBase, func(c *ConsumerConfig) { c.DeliverGroup = "q" }), 0, ""},
		{"same start time in another zone", timeBase, with(timeBase, func(c *ConsumerConfig) { t := start.In(time.FixedZone("X", 7200)); c.OptStartTime = &t }), 0, ""},

		{"deliver policy", base, with(base, func(c *ConsumerConfig) { c.DeliverPolicy = DeliverNew }), JSErrConsumerCreate, "deliver policy can not be updated"},
		{"mem storage", base, with(base, func(c *ConsumerConfig) { c.MemoryStorage = true }), JSErrConsumerCreate, "storage type can not be updated"},
		{"start sequence", seqBase, with(seqBase, func(c *ConsumerConfig) { c.OptStartSeq = 6 }), JSErrConsumerCreate, "start sequence can not be updated"},
		{"start time", timeBase, with(timeBase, func(c *ConsumerConfig) { c.OptStartTime = &later }), JSErrConsumerCreate, "start time can not be updated"},
		{"ack policy", base, with(base, func(c *ConsumerConfig) { c.AckPolicy = AckAll }), JSErrConsumerCreate, "ack policy can not be updated"},
		{"replay policy", base, with(base, func(c *ConsumerConfig) { c.ReplayPolicy = ReplayOriginal }), JSErrConsumerCreate, "replay policy can not be updated"},
		{"heartbeat", pushBase, with(pushBase, func(c *ConsumerConfig) { c.Heartbeat = 2 * time.Second }), JSErrConsumerCreate, "heart beats can not be updated"},
		{"flow control", pushBase, with(pushBase, func(c *ConsumerConfig) { c.FlowControl = true }), JSErrConsumerCreate, "flow control can not be updated"},
		{"pull to push", base, with(base, func(c *ConsumerConfig) { c.DeliverSubject = "d.x" }), JSErrConsumerCreate, "can not update pull consumer to push based"},
		{"push to pull", ConsumerConfig{Durable: "D", DeliverSubject: "d.x"}, ConsumerConfig{Durable: "D"}, JSErrConsumerCreate, "can not update push consumer to pull based"},
		{"max waiting", base, with(base, func(c *ConsumerConfig) { c.MaxWaiting = 10 }), JSErrConsumerCreate, "max waiting can not be updated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cur, next := mustNormalizedConsumer(t, tt.cur.clone()), mustNormalizedConsumer(t, tt.next.clone())
			e := CheckConsumerUpdate(cur, next)
			switch {
			case tt.code == 0 && e != nil:
				t.Fatalf("refused: %v", e)
			case tt.code != 0 && e == nil:
				t.Fatal("allowed")
			case tt.code != 0 && (e.ErrCode != tt.code || e.Description != tt.desc || e.Code != 500):
				t.Fatalf("got %d %d %q, want 500 %d %q", e.Code, e.ErrCode, e.Description, tt.code, tt.desc)
			}
		})
	}
	// Backoff beyond max_deliver is refused with its own code.
	cur := mustNormalizedConsumer(t, base.clone())
	next := cur.clone()
	next.MaxDeliver, next.BackOff = 1, []time.Duration{time.Second, time.Second}
	if e := CheckConsumerUpdate(cur, &next); e == nil || e.ErrCode != JSErrConsumerMaxDeliverBackoff {
		t.Fatalf("backoff update: %v", e)
	}
}

func TestSameConsumerConfig(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := mustNormalizedConsumer(t, ConsumerConfig{Durable: "D", Metadata: map[string]string{"k": "v"}, DeliverPolicy: DeliverByStartTime, OptStartTime: &start})
	b := a.clone()
	b.Metadata = map[string]string{"k": "v", "_nats.ver": "2.15.2", "_nats.level": "1"}
	inZone := start.In(time.FixedZone("X", 3600))
	b.OptStartTime = &inZone
	if !SameConsumerConfig(a, &b) {
		t.Fatal("server metadata and time zone should not matter")
	}
	b.FilterSubjects, b.BackOff = []string{}, []time.Duration{}
	if !SameConsumerConfig(a, &b) {
		t.Fatal("empty and absent collections should be equal")
	}
	for name, change := range map[string]func(*ConsumerConfig){
		"user metadata": func(c *ConsumerConfig) { c.Metadata["k"] = "w" },
		"ack wait":      func(c *ConsumerConfig) { c.AckWait++ },
		"pause":         func(c *ConsumerConfig) { c.PauseUntil = &start },
		"start time":    func(c *ConsumerConfig) { t := start.Add(1); c.OptStartTime = &t },
		"description":   func(c *ConsumerConfig) { c.Description = "x" },
	} {
		c := a.clone()
		change(&c)
		if SameConsumerConfig(a, &c) {
			t.Errorf("%s change not seen", name)
		}
	}
}
