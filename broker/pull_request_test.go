package broker

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParsePullRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string
		want   PullRequest
		reason string
	}{
		{name: "empty", body: "", want: PullRequest{Batch: 1}},
		{name: "blank", body: " \r\n", want: PullRequest{Batch: 1}},
		{name: "bare integer", body: "5", want: PullRequest{Batch: 5}},
		{name: "bare integer padded", body: " 12\r\n", want: PullRequest{Batch: 12}},
		{name: "bare zero", body: "0", want: PullRequest{Batch: 1}},
		{name: "bare negative", body: "-3", want: PullRequest{Batch: 1}},
		// nats-server reads anything that is neither JSON nor an integer
		// as a request for one message rather than an error.
		{name: "garbage", body: "hello", want: PullRequest{Batch: 1}},
		{name: "json null", body: "null", want: PullRequest{Batch: 1}},
		{name: "integer overflow", body: "99999999999999999999", want: PullRequest{Batch: 1}},
		// What nats.go jetstream sends (reference §2.8).
		{
			name: "fetch",
			body: `{"expires":30000000000,"batch":10,"idle_heartbeat":5000000000}`,
			want: PullRequest{Batch: 10, Expires: 30 * time.Second, Heartbeat: 5 * time.Second},
		},
		{name: "fetch max wait", body: `{"expires":2000000000,"batch":10}`, want: PullRequest{Batch: 10, Expires: 2 * time.Second}},
		{name: "fetch no wait", body: `{"batch":3,"no_wait":true}`, want: PullRequest{Batch: 3, NoWait: true}},
		{
			name: "fetch bytes",
			body: `{"expires":30000000000,"batch":1000000,"max_bytes":4096}`,
			want: PullRequest{Batch: 1000000, Expires: 30 * time.Second, MaxBytes: 4096},
		},
		{
			name: "legacy fetch",
			body: `{"expires":4999000000,"batch":7,"no_wait":true}`,
			want: PullRequest{Batch: 7, Expires: 4999 * time.Millisecond, NoWait: true},
		},
		{name: "empty object", body: `{}`, want: PullRequest{Batch: 1}},
		{name: "json batch zero", body: `{"batch":0}`, want: PullRequest{Batch: 1}},
		{name: "json batch negative", body: `{"batch":-4}`, want: PullRequest{Batch: 1}},
		{name: "negative max_bytes", body: `{"batch":2,"max_bytes":-1}`, want: PullRequest{Batch: 2}},
		{name: "negative expires kept", body: `{"expires":-5}`, want: PullRequest{Batch: 1, Expires: -5}},
		{name: "negative heartbeat is none", body: `{"expires":10,"idle_heartbeat":-1}`, want: PullRequest{Batch: 1, Expires: 10}},
		{name: "unknown fields ignored", body: `{"batch":2,"foo":[1,2]}`, want: PullRequest{Batch: 2}},
		{name: "heartbeat exactly half", body: `{"expires":10,"idle_heartbeat":5}`, want: PullRequest{Batch: 1, Expires: 10, Heartbeat: 5}},
		{name: "heartbeat odd expires", body: `{"expires":11,"idle_heartbeat":5}`, want: PullRequest{Batch: 1, Expires: 11, Heartbeat: 5}},
		{
			name: "priority fields",
			body: `{"batch":1,"group":"g","min_pending":2,"min_ack_pending":3,"id":"pin","priority":4}`,
			want: PullRequest{Batch: 1, Group: "g", MinPending: 2, MinAckPending: 3, PinID: "pin", Priority: 4},
		},

		{name: "heartbeat too large", body: `{"expires":10,"idle_heartbeat":6}`, reason: "heartbeat value too large"},
		{name: "heartbeat without expires", body: `{"batch":1,"idle_heartbeat":1000}`, reason: "heartbeat value too large"},
		{name: "huge heartbeat", body: `{"expires":1,"idle_heartbeat":9223372036854775807}`, reason: "heartbeat value too large"},
		// JSON errors are sent verbatim and name the same struct as
		// nats-server's (texts checked against nats-server v2.15.2).
		{
			name:   "wrong type",
			body:   `{"batch":"x"}`,
			reason: "json: cannot unmarshal string into Go struct field JSApiConsumerGetNextRequest.batch of type int",
		},
		{
			name:   "wrong priority type",
			body:   `{"group":1}`,
			reason: "json: cannot unmarshal number into Go struct field JSApiConsumerGetNextRequest.PriorityGroup.group of type string",
		},
		{
			name:   "expires as string",
			body:   `{"expires":"5s"}`,
			reason: "json: cannot unmarshal string into Go struct field JSApiConsumerGetNextRequest.expires of type time.Duration",
		},
		{name: "truncated", body: `{"batch":1`, reason: "unexpected end of JSON input"},
		{name: "trailing data", body: `{"batch":1} x`, reason: "invalid character 'x' after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, reason := ParsePullRequest([]byte(tt.body))
			if reason != tt.reason {
				t.Fatalf("ParsePullRequest(%q) reason = %q, want %q", tt.body, reason, tt.reason)
			}
			if tt.reason == "" && got != tt.want {
				t.Fatalf("ParsePullRequest(%q) = %+v, want %+v", tt.body, got, tt.want)
			}
		})
	}
}

func TestCheckPullLimits(t *testing.T) {
	t.Parallel()
	req := PullRequest{Batch: 10, Expires: 2 * time.Minute, MaxBytes: 2048}
	tests := []struct {
		name       string
		r          PullRequest
		maxBatch   int
		maxExpires time.Duration
		maxBytes   int
		want       string
	}{
		{name: "no caps", r: req},
		{name: "within caps", r: req, maxBatch: 10, maxExpires: 2 * time.Minute, maxBytes: 2048},
		{name: "batch", r: req, maxBatch: 9, want: "Exceeded MaxRequestBatch of 9"},
		{name: "expires", r: req, maxExpires: 90 * time.Second, want: "Exceeded MaxRequestExpires of 1m30s"},
		{name: "expires fraction", r: req, maxExpires: 1500 * time.Millisecond, want: "Exceeded MaxRequestExpires of 1.5s"},
		{name: "bytes", r: req, maxBytes: 1024, want: "Exceeded MaxRequestMaxBytes of 1024"},
		{name: "batch checked first", r: req, maxBatch: 1, maxExpires: time.Second, maxBytes: 1, want: "Exceeded MaxRequestBatch of 1"},
		{name: "expires before bytes", r: req, maxExpires: time.Second, maxBytes: 1, want: "Exceeded MaxRequestExpires of 1s"},
		{name: "no expires is never over", r: PullRequest{Batch: 1}, maxExpires: time.Second},
		{name: "negative expires is never over", r: PullRequest{Batch: 1, Expires: -1}, maxExpires: time.Second},
		{name: "no max_bytes is never over", r: PullRequest{Batch: 1}, maxBytes: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := CheckPullLimits(tt.r, tt.maxBatch, tt.maxExpires, tt.maxBytes); got != tt.want {
				t.Fatalf("CheckPullLimits = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckPriority(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want string
	}{
		{body: ``},
		{body: `5`},
		{body: `{"batch":1}`},
		{body: `{"group":"g"}`},
		{body: `{"priority":9}`},
		{body: `{"min_pending":1}`, want: "Not a Overflow Priority consumer"},
		{body: `{"min_ack_pending":1,"id":"x"}`, want: "Not a Overflow Priority consumer"},
		{body: `{"id":"x","priority":11}`, want: "Not a Pinned Client Priority consumer"},
		{body: `{"priority":10}`, want: "Priority must be between 0 and 9"},
		{body: `{"priority":-1}`, want: "Priority must be between 0 and 9"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			t.Parallel()
			r, reason := ParsePullRequest([]byte(tt.body))
			if reason != "" {
				t.Fatalf("ParsePullRequest(%q): %s", tt.body, reason)
			}
			if got := CheckPriority(r); got != tt.want {
				t.Fatalf("CheckPriority(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

// FuzzParsePullRequest checks that ParsePullRequest never panics, that an
// accepted request satisfies the documented invariants, and that its JSON
// re-encoding parses back to the same request.
func FuzzParsePullRequest(f *testing.F) {
	for _, s := range []string{
		"", "5", "-1", "x", "null", "{}", `{"batch":0}`,
		`{"expires":30000000000,"batch":10,"idle_heartbeat":5000000000}`,
		`{"batch":3,"no_wait":true}`, `{"batch":1,"max_bytes":-7}`,
		`{"expires":10,"idle_heartbeat":6}`, `{"batch":"x"}`, `{"batch":1`,
		`{"group":"g","min_pending":1,"id":"p","priority":3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, reason := ParsePullRequest(body)
		if reason != "" {
			if r != (PullRequest{}) {
				t.Fatalf("refused request %q returned %+v", body, r)
			}
			return
		}
		if r.Batch < 1 || r.MaxBytes < 0 || r.Heartbeat < 0 {
			t.Fatalf("ParsePullRequest(%q) = %+v: out of range", body, r)
		}
		if r.Heartbeat > 0 && r.Heartbeat > r.Expires/2 {
			t.Fatalf("ParsePullRequest(%q) = %+v: heartbeat over expires/2", body, r)
		}
		again, reason := ParsePullRequest(mustMarshalPull(t, r))
		if reason != "" || again != r {
			t.Fatalf("round trip of %+v = %+v, %q", r, again, reason)
		}
	})
}

// mustMarshalPull encodes r in the JSON form a client sends.
func mustMarshalPull(t *testing.T, r PullRequest) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"batch": r.Batch, "expires": r.Expires, "no_wait": r.NoWait,
		"max_bytes": r.MaxBytes, "idle_heartbeat": r.Heartbeat,
		"group": r.Group, "min_pending": r.MinPending, "min_ack_pending": r.MinAckPending,
		"id": r.PinID, "priority": r.Priority,
	})
	if err != nil {
		t.Fatalf("marshal pull request: %v", err)
	}
	return b
}
