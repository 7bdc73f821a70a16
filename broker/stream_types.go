package broker

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The JSON shapes in this file are the JetStream wire formats (reference
// §2.4, §2.6): field names, omitempty rules and enum strings match what
// nats-server sends, because nats.go, jsm.go and the CLI decode them
// strictly. Unknown JSON fields are ignored on decode (newer clients send
// flags we do not implement).

// RetentionPolicy is a stream's retention: "limits", "interest" or
// "workqueue". Only limits is implemented.
type RetentionPolicy string

// Retention policies.
const (
	LimitsPolicy    RetentionPolicy = "limits"
	InterestPolicy  RetentionPolicy = "interest"
	WorkQueuePolicy RetentionPolicy = "workqueue"
)

// UnmarshalJSON accepts only the known policies (or ""), so a typo fails
// the request as invalid JSON, as it does with nats-server.
func (p *RetentionPolicy) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, (*string)(p), "retention policy", string(LimitsPolicy), string(InterestPolicy), string(WorkQueuePolicy))
}

// DiscardPolicy says what a full stream does with a new message: "old"
// evicts the oldest messages, "new" rejects the new one.
type DiscardPolicy string

// Discard policies.
const (
	DiscardOld DiscardPolicy = "old"
	DiscardNew DiscardPolicy = "new"
)

// UnmarshalJSON accepts only "old", "new" (or "").
func (p *DiscardPolicy) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, (*string)(p), "discard policy", string(DiscardOld), string(DiscardNew))
}

// StorageType is "file" or "memory". Both are stored durably in the
// node's state file; "memory" is accepted and echoed for compatibility.
type StorageType string

// Storage types.
const (
	FileStorage   StorageType = "file"
	MemoryStorage StorageType = "memory"
)

// UnmarshalJSON accepts only "file", "memory" (or "").
func (t *StorageType) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, (*string)(t), "storage type", string(FileStorage), string(MemoryStorage))
}

func unmarshalEnum(b []byte, dst *string, what string, allowed ...string) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("can not unmarshal %s: %w", what, err)
	}
	if s == "" {
		*dst = ""
		return nil
	}
	for _, a := range allowed {
		if s == a {
			*dst = s
			return nil
		}
	}
	return fmt.Errorf("can not unmarshal %q as %s", s, what)
}

// StreamConsumerLimits are defaults and caps for the stream's consumers.
type StreamConsumerLimits struct {
	InactiveThreshold time.Duration `json:"inactive_threshold,omitempty"`
	MaxAckPending     int           `json:"max_ack_pending,omitempty"`
}

// StreamConfig is a stream's configuration (the JSON of STREAM.CREATE and
// STREAM.UPDATE, and the "config" of StreamInfo). Normalize fills the
// defaults nats-server fills; durations travel as integer nanoseconds.
type StreamConfig struct {
	Name              string               `json:"name"`
	Description       string               `json:"description,omitempty"`
	Subjects          []string             `json:"subjects,omitempty"`
	Retention         RetentionPolicy      `json:"retention"`
	MaxConsumers      int                  `json:"max_consumers"`
	MaxMsgs           int64                `json:"max_msgs"`
	MaxBytes          int64                `json:"max_bytes"`
	MaxAge            time.Duration        `json:"max_age"`
	MaxMsgsPerSubject int64                `json:"max_msgs_per_subject"`
	MaxMsgSize        int32                `json:"max_msg_size,omitempty"`
	Discard           DiscardPolicy        `json:"discard"`
	DiscardNewPer     bool                 `json:"discard_new_per_subject,omitempty"`
	Storage           StorageType          `json:"storage"`
	Replicas          int                  `json:"num_replicas"`
	NoAck             bool                 `json:"no_ack,omitempty"`
	Duplicates        time.Duration        `json:"duplicate_window"`
	Compression       string               `json:"compression"`
	FirstSeq          uint64               `json:"first_seq,omitempty"`
	AllowDirect       bool                 `json:"allow_direct"`
	MirrorDirect      bool                 `json:"mirror_direct"`
	Sealed            bool                 `json:"sealed"`
	DenyDelete        bool                 `json:"deny_delete"`
	DenyPurge         bool                 `json:"deny_purge"`
	AllowRollup       bool                 `json:"allow_rollup_hdrs"`
	ConsumerLimits    StreamConsumerLimits `json:"consumer_limits"`
	Metadata          map[string]string    `json:"metadata,omitempty"`

	// Features outside the subset. They are decoded only so that Normalize
	// can refuse them instead of silently creating a different stream;
	// they are never echoed (a valid config has them nil).
	Mirror           json.RawMessage `json:"mirror,omitempty"`
	Sources          json.RawMessage `json:"sources,omitempty"`
	SubjectTransform json.RawMessage `json:"subject_transform,omitempty"`
	RePublish        json.RawMessage `json:"republish,omitempty"`
}

// StreamState is a stream's counters (StreamInfo "state").
type StreamState struct {
	Msgs        uint64    `json:"messages"`
	Bytes       uint64    `json:"bytes"`
	FirstSeq    uint64    `json:"first_seq"`
	FirstTime   time.Time `json:"first_ts"`
	LastSeq     uint64    `json:"last_seq"`
	LastTime    time.Time `json:"last_ts"`
	NumSubjects int       `json:"num_subjects,omitempty"`
	NumDeleted  int       `json:"num_deleted,omitempty"`
	Consumers   int       `json:"consumer_count"`
}

// ClusterInfo is StreamInfo's "cluster"; the API layer fills it.
type ClusterInfo struct {
	Name   string `json:"name,omitempty"`
	Leader string `json:"leader,omitempty"`
}

// StreamInfo is the body of STREAM.CREATE/UPDATE/INFO responses and a
// STREAM.LIST entry. Every StreamInfo returned by the FSM is a fresh copy
// the caller may modify. DidCreate is set only on the result of a create
// that made the stream.
type StreamInfo struct {
	Config    StreamConfig `json:"config"`
	Created   time.Time    `json:"created"`
	State     StreamState  `json:"state"`
	Cluster   *ClusterInfo `json:"cluster,omitempty"`
	TimeStamp time.Time    `json:"ts"`
	DidCreate bool         `json:"did_create,omitempty"`
}

// PublishMsg is one message of a publish batch.
type PublishMsg struct {
	Subject string
	Header  []byte // raw NATS header block, "NATS/1.0\r\n...\r\n\r\n", or nil
	Data    []byte
}

// PubAck answers one stream publish (a rejected publish carries Error).
type PubAck struct {
	Stream    string    `json:"stream"`
	Seq       uint64    `json:"seq"`
	Duplicate bool      `json:"duplicate,omitempty"`
	Error     *APIError `json:"error,omitempty"`
}

// StoredMsg is a message read back from a stream. Its slices are owned by
// the caller.
type StoredMsg struct {
	Subject string
	Seq     uint64
	Header  []byte
	Data    []byte
	Time    time.Time
}

// PurgeRequest is the body of STREAM.PURGE: all messages, or those on
// Subject (a filter, wildcards allowed), limited to sequences below Seq or
// to all but the newest Keep. Seq and Keep are exclusive.
type PurgeRequest struct {
	Subject string `json:"filter"`
	Seq     uint64 `json:"seq"`
	Keep    uint64 `json:"keep"`
}

// MsgGetRequest is the body of STREAM.MSG.GET: Seq alone, LastFor alone,
// or NextFor with an optional starting Seq.
type MsgGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
}

// APIError is a JetStream API error: an HTTP-like Code, the numeric
// ErrCode clients compare (errors.Is in nats.go) and a Description.
type APIError struct {
	Code        int    `json:"code"`
	ErrCode     uint16 `json:"err_code"`
	Description string `json:"description"`
}

// NewAPIError returns an API error.
func NewAPIError(code int, errCode uint16, description string) *APIError {
	return &APIError{Code: code, ErrCode: errCode, Description: description}
}

func (e *APIError) Error() string {
	return e.Description + " (" + strconv.Itoa(int(e.ErrCode)) + ")"
}

// Is matches another *APIError with the same ErrCode, as nats.go does.
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	return ok && t != nil && e != nil && t.ErrCode == e.ErrCode
}

// JetStream error codes (nats-server errors.json, reference §2.2). Each
// constructor returns a fresh value with nats-server's description text.
const (
	JSErrBadRequest           uint16 = 10003
	JSErrClusterUnavailable   uint16 = 10008
	JSErrInvalidJSON          uint16 = 10025
	JSErrNoMessageFound       uint16 = 10037
	JSErrSequenceNotFound     uint16 = 10043
	JSErrStreamGeneral        uint16 = 10051
	JSErrStreamInvalidConfig  uint16 = 10052
	JSErrMessageTooBig        uint16 = 10054
	JSErrStreamMismatch       uint16 = 10056
	JSErrMsgDeleteFailed      uint16 = 10057
	JSErrHeaderTooBig         uint16 = 10097
	JSErrStreamNameInUse      uint16 = 10058
	JSErrStreamNotFound       uint16 = 10059
	JSErrStreamNotMatch       uint16 = 10060
	JSErrSubjectOverlap       uint16 = 10065
	JSErrWrongLastMsgID       uint16 = 10070
	JSErrWrongLastSequence    uint16 = 10071
	JSErrStreamStoreFailed    uint16 = 10077
	JSErrStreamSealed         uint16 = 10109
	JSErrPurgeFailed          uint16 = 10110
	JSErrRollupFailed         uint16 = 10111
	JSErrReplicasNegative     uint16 = 10133
	JSErrExpectedSubjectNoSeq uint16 = 10193
)

// ErrBadRequest is 10003 with a specific description (nats-server's text
// is just "bad request"; clients compare the code only).
func ErrBadRequest(description string) *APIError {
	if description == "" {
		description = "bad request"
	}
	return NewAPIError(400, JSErrBadRequest, description)
}

// ErrClusterUnavailable is 10008: no leader could answer in time.
func ErrClusterUnavailable() *APIError {
	return NewAPIError(503, JSErrClusterUnavailable, "JetStream system temporarily unavailable")
}

// ErrInvalidJSON is 10025.
func ErrInvalidJSON(err error) *APIError {
	return NewAPIError(400, JSErrInvalidJSON, "invalid JSON: "+err.Error())
}

// ErrNoMessageFound is 10037 (MSG.GET found nothing).
func ErrNoMessageFound() *APIError { return NewAPIError(404, JSErrNoMessageFound, "no message found") }

// ErrSequenceNotFound is 10043 (MSG.DELETE of a sequence that is not
// stored).
func ErrSequenceNotFound(seq uint64) *APIError {
	return NewAPIError(400, JSErrSequenceNotFound, "sequence "+strconv.FormatUint(seq, 10)+" not found")
}

// ErrStreamGeneral is 10051 (an unexpected failure, e.g. a corrupt record).
func ErrStreamGeneral(description string) *APIError {
	return NewAPIError(500, JSErrStreamGeneral, description)
}

// ErrStreamInvalidConfig is 10052 (nats-server answers 500 for it).
func ErrStreamInvalidConfig(description string) *APIError {
	return NewAPIError(500, JSErrStreamInvalidConfig, description)
}

// ErrMessageTooBig is 10054: header plus data exceed max_msg_size.
func ErrMessageTooBig() *APIError {
	return NewAPIError(400, JSErrMessageTooBig, "message size exceeds maximum allowed")
}

// ErrStreamMismatch is 10056: the name in the subject and body differ.
func ErrStreamMismatch() *APIError {
	return NewAPIError(400, JSErrStreamMismatch, "stream name in subject does not match request")
}

// ErrMsgDeleteFailed is 10057.
func ErrMsgDeleteFailed(description string) *APIError {
	return NewAPIError(500, JSErrMsgDeleteFailed, description)
}

// ErrStreamNameInUse is 10058: create with a different configuration.
func ErrStreamNameInUse() *APIError {
	return NewAPIError(400, JSErrStreamNameInUse, "stream name already in use with a different configuration")
}

// ErrStreamNotFound is 10059.
func ErrStreamNotFound() *APIError { return NewAPIError(404, JSErrStreamNotFound, "stream not found") }

// ErrStreamNotMatch is 10060: Nats-Expected-Stream differs.
func ErrStreamNotMatch() *APIError {
	return NewAPIError(400, JSErrStreamNotMatch, "expected stream does not match")
}

// ErrSubjectOverlap is 10065.
func ErrSubjectOverlap() *APIError {
	return NewAPIError(400, JSErrSubjectOverlap, "subjects overlap with an existing stream")
}

// ErrWrongLastMsgID is 10070; last is the stream's actual last message id.
func ErrWrongLastMsgID(last string) *APIError {
	return NewAPIError(400, JSErrWrongLastMsgID, "wrong last msg ID: "+last)
}

// ErrWrongLastSequence is 10071; last is the actual last sequence.
func ErrWrongLastSequence(last uint64) *APIError {
	return NewAPIError(400, JSErrWrongLastSequence, "wrong last sequence: "+strconv.FormatUint(last, 10))
}

// ErrStoreFailed is 10077 (503) with the store's reason, e.g. "maximum
// messages exceeded" under discard new.
func ErrStoreFailed(reason string) *APIError {
	return NewAPIError(503, JSErrStreamStoreFailed, reason)
}

// Reasons carried by ErrStoreFailed.
const (
	reasonMaxMsgs       = "maximum messages exceeded"
	reasonMaxBytes      = "maximum bytes exceeded"
	reasonMaxPerSubject = "maximum messages per subject exceeded"
	reasonNoStream      = "no stream matches subject"
)

// ErrNoStreamMatch is the PubAck error of a publish that no stream
// captured when it was applied (the stream was deleted or changed after
// the ingress node routed it): 503 / 10077 "no stream matches subject",
// with an empty PubAck.Stream.
func ErrNoStreamMatch() *APIError { return ErrStoreFailed(reasonNoStream) }

// ErrHeaderTooBig is 10097: a header block over 64 KiB.
func ErrHeaderTooBig() *APIError {
	return NewAPIError(400, JSErrHeaderTooBig, "header size exceeds maximum allowed of 64k")
}

// ErrStreamSealed is 10109.
func ErrStreamSealed() *APIError {
	return NewAPIError(400, JSErrStreamSealed, "invalid operation on sealed stream")
}

// ErrPurgeFailed is 10110 (e.g. "stream purge not permitted").
func ErrPurgeFailed(description string) *APIError {
	return NewAPIError(500, JSErrPurgeFailed, description)
}

// ErrRollupFailed is 10111 (e.g. "rollup not permitted").
func ErrRollupFailed(description string) *APIError {
	return NewAPIError(500, JSErrRollupFailed, description)
}

// ErrExpectedSubjectNoSeq is 10193: the -Subject variant of the expected
// last subject sequence header came without the sequence.
func ErrExpectedSubjectNoSeq() *APIError {
	return NewAPIError(400, JSErrExpectedSubjectNoSeq, "missing sequence for expected last sequence per subject")
}
