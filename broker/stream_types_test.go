package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestStreamTypes_WireShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"pub ack", PubAck{Stream: "S1", Seq: 4}, `{"stream":"S1","seq":4}`},
		{"duplicate", PubAck{Stream: "S1", Seq: 4, Duplicate: true}, `{"stream":"S1","seq":4,"duplicate":true}`},
		{"rejected", PubAck{Stream: "S1", Error: ErrWrongLastSequence(4)},
			`{"stream":"S1","seq":0,"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 4"}}`},
		{"empty state", StreamState{},
			`{"messages":0,"bytes":0,"first_seq":0,"first_ts":"0001-01-01T00:00:00Z","last_seq":0,"last_ts":"0001-01-01T00:00:00Z","consumer_count":0}`},
		{"info", StreamInfo{Created: time.Unix(0, 0).UTC(), TimeStamp: time.Unix(1, 0).UTC(), Cluster: &ClusterInfo{Leader: "n1"}, DidCreate: true},
			`{"config":{"name":"","retention":"","max_consumers":0,"max_msgs":0,"max_bytes":0,"max_age":0,"max_msgs_per_subject":0,"discard":"","storage":"","num_replicas":0,"duplicate_window":0,"compression":"","allow_direct":false,"mirror_direct":false,"sealed":false,"deny_delete":false,"deny_purge":false,"allow_rollup_hdrs":false,"consumer_limits":{}},` +
				`"created":"1970-01-01T00:00:00Z","state":{"messages":0,"bytes":0,"first_seq":0,"first_ts":"0001-01-01T00:00:00Z","last_seq":0,"last_ts":"0001-01-01T00:00:00Z","consumer_count":0},` +
				`"cluster":{"leader":"n1"},"ts":"1970-01-01T00:00:01Z","did_create":true}`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.v)
		if err != nil || string(got) != tt.want {
			t.Errorf("%s:\n got %s %v\nwant %s", tt.name, got, err, tt.want)
		}
	}
}

func TestAPIError_Codes(t *testing.T) {
	t.Parallel()
	// Code, err_code and nats-server's text for every constructor.
	tests := []struct {
		e        *APIError
		code     int
		errCode  uint16
		describe string
	}{
		{ErrBadRequest(""), 400, 10003, "bad request"},
		{ErrClusterUnavailable(), 503, 10008, "JetStream system temporarily unavailable"},
		{ErrInvalidJSON(errors.New("x")), 400, 10025, "invalid JSON: x"},
		{ErrNoMessageFound(), 404, 10037, "no message found"},
		{ErrSequenceNotFound(9), 400, 10043, "sequence 9 not found"},
		{ErrStreamGeneral("boom"), 500, 10051, "boom"},
		{ErrStreamInvalidConfig("bad"), 500, 10052, "bad"},
		{ErrMessageTooBig(), 400, 10054, "message size exceeds maximum allowed"},
		{ErrStreamMismatch(), 400, 10056, "stream name in subject does not match request"},
		{ErrMsgDeleteFailed("message delete not permitted"), 500, 10057, "message delete not permitted"},
		{ErrStreamNameInUse(), 400, 10058, "stream name already in use with a different configuration"},
		{ErrStreamNotFound(), 404, 10059, "stream not found"},
		{ErrStreamNotMatch(), 400, 10060, "expected stream does not match"},
		{ErrSubjectOverlap(), 400, 10065, "subjects overlap with an existing stream"},
		{ErrWrongLastMsgID("a"), 400, 10070, "wrong last msg ID: a"},
		{ErrWrongLastSequence(3), 400, 10071, "wrong last sequence: 3"},
		{ErrStoreFailed("maximum messages exceeded"), 503, 10077, "maximum messages exceeded"},
		{ErrNoStreamMatch(), 503, 10077, "no stream matches subject"},
		{ErrHeaderTooBig(), 400, 10097, "header size exceeds maximum allowed of 64k"},
		{ErrStreamSealed(), 400, 10109, "invalid operation on sealed stream"},
		{ErrPurgeFailed("stream purge not permitted"), 500, 10110, "stream purge not permitted"},
		{ErrRollupFailed("rollup not permitted"), 500, 10111, "rollup not permitted"},
		{ErrExpectedSubjectNoSeq(), 400, 10193, "missing sequence for expected last sequence per subject"},
	}
	for _, tt := range tests {
		if tt.e.Code != tt.code || tt.e.ErrCode != tt.errCode || tt.e.Description != tt.describe {
			t.Errorf("%+v, want %d %d %q", tt.e, tt.code, tt.errCode, tt.describe)
		}
	}
	// errors.Is compares err_code, as nats.go does.
	wrapped := fmt.Errorf("publish: %w", ErrWrongLastSequence(7))
	if !errors.Is(wrapped, &APIError{ErrCode: JSErrWrongLastSequence}) || errors.Is(wrapped, ErrStreamNotFound()) {
		t.Fatal("APIError.Is")
	}
	if ErrStreamNotFound() == ErrStreamNotFound() {
		t.Fatal("constructors must return fresh values")
	}
}
