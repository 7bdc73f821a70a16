package broker

import "testing"

func TestStatusBuilders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		// The first three are captured from nats-server 2.15.2 (reference
		// §2.8), including their lengths on the HMSG line (81, 28, 76).
		{
			name: "request timeout",
			got:  StatusRequestTimeout(7, 0),
			want: "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 7\r\nNats-Pending-Bytes: 0\r\n\r\n",
		},
		{name: "no messages", got: StatusNoMessages(), want: "NATS/1.0 404 No Messages\r\n\r\n"},
		{
			name: "idle heartbeat",
			got:  StatusIdleHeartbeat(4, 18, ""),
			want: "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 4\r\nNats-Last-Stream: 18\r\n\r\n",
		},
		{
			name: "idle heartbeat stalled",
			got:  StatusIdleHeartbeat(4, 18, "$JS.FC.S.C.abcd"),
			want: "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 4\r\nNats-Last-Stream: 18\r\nNats-Consumer-Stalled: $JS.FC.S.C.abcd\r\n\r\n",
		},
		{
			name: "idle heartbeat max",
			got:  StatusIdleHeartbeat(^uint64(0), 0, ""),
			want: "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 18446744073709551615\r\nNats-Last-Stream: 0\r\n\r\n",
		},
		// Captured on a push consumer's deliver subject (reference §2.12).
		{name: "flow control", got: StatusFlowControl(), want: "NATS/1.0 100 FlowControl Request\r\n\r\n"},
		{name: "requests pending", got: StatusRequestsPending(), want: "NATS/1.0 408 Requests Pending\r\n\r\n"},
		{
			name: "bad request",
			got:  StatusBadRequest("heartbeat value too large"),
			want: "NATS/1.0 400 Bad Request - heartbeat value too large\r\n\r\n",
		},
		{name: "no responders", got: StatusNoResponders(), want: "NATS/1.0 503\r\n\r\n"},
		// Captured core no-responders answer (reference §1.7).
		{name: "no responders for", got: StatusNoRespondersFor("svc.none"), want: "NATS/1.0 503\r\nNats-Subject: svc.none\r\n\r\n"},
		{
			name: "conflict without pending",
			got:  StatusConflict(StatusTextConsumerDeleted, 3, 4, false),
			want: "NATS/1.0 409 Consumer Deleted\r\n\r\n",
		},
		{
			name: "conflict with pending",
			got:  StatusConflict(StatusTextMaxBytesExceeded, 5, 100, true),
			want: "NATS/1.0 409 Message Size Exceeds MaxBytes\r\nNats-Pending-Messages: 5\r\nNats-Pending-Bytes: 100\r\n\r\n",
		},
		{
			name: "batch completed",
			got:  StatusConflict(StatusTextBatchCompleted, 0, 17, true),
			want: "NATS/1.0 409 Batch Completed\r\nNats-Pending-Messages: 0\r\nNats-Pending-Bytes: 17\r\n\r\n",
		},
		{
			name: "limit",
			got:  StatusConflict(CheckPullLimits(PullRequest{Batch: 2}, 1, 0, 0), 0, 0, false),
			want: "NATS/1.0 409 Exceeded MaxRequestBatch of 1\r\n\r\n",
		},
		{name: "append status kv", got: AppendStatus([]byte("x"), 423, "Nats-Wrong-Pin-Id", "A", "1", "B", ""), want: "xNATS/1.0 423 Nats-Wrong-Pin-Id\r\nA: 1\r\nB: \r\n\r\n"},
		{name: "append status bare", got: AppendStatus(nil, 200, ""), want: "NATS/1.0 200\r\n\r\n"},
		// A reason may carry client bytes; it must not break the block.
		{name: "line breaks neutralised", got: AppendStatus(nil, 400, "a\r\nB: c", "K\n", "v\r"), want: "NATS/1.0 400 a  B: c\r\nK : v \r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if string(tt.got) != tt.want {
				t.Fatalf("got  %q\nwant %q", tt.got, tt.want)
			}
		})
	}
}

// TestStatusTexts pins the spellings nats.go and nats-server use; clients
// match several of them by text.
func TestStatusTexts(t *testing.T) {
	t.Parallel()
	texts := map[string]string{
		StatusTextIdleHeartbeat:    "Idle Heartbeat",
		StatusTextFlowControl:      "FlowControl Request",
		StatusTextBadRequest:       "Bad Request",
		StatusTextNoMessages:       "No Messages",
		StatusTextRequestTimeout:   "Request Timeout",
		StatusTextRequestsPending:  "Requests Pending",
		StatusTextInterestExpired:  "Interest Expired",
		StatusTextMaxBytesExceeded: "Message Size Exceeds MaxBytes",
		StatusTextBatchCompleted:   "Batch Completed",
		StatusTextMaxWaiting:       "Exceeded MaxWaiting",
		StatusTextConsumerDeleted:  "Consumer Deleted",
		StatusTextLeadershipChange: "Leadership Change",
		StatusTextPushBased:        "Consumer is push based",
		StatusTextServerShutdown:   "Server Shutdown",
	}
	for got, want := range texts {
		if got != want {
			t.Errorf("status text %q, want %q", got, want)
		}
	}
}

func TestAppendStatus_OddKVPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("AppendStatus with an odd kv did not panic")
		}
	}()
	AppendStatus(nil, 409, "x", "key")
}

func TestStatusBuilders_FreshSlices(t *testing.T) {
	t.Parallel()
	// Callers may append to or reuse what they get; two calls must not
	// share memory.
	a, b := StatusNoMessages(), StatusNoMessages()
	a[0] = 'X'
	if b[0] != 'N' {
		t.Fatal("StatusNoMessages returned shared memory")
	}
}
