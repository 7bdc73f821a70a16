package broker

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The JSON shapes in this file are JetStream's consumer wire formats
// (reference §2.7): field names, omitempty rules and enum strings match
// nats-server's, because nats.go, jsm.go and the CLI decode them strictly
// (the CLI validates responses against JSON schemas). Unknown JSON fields
// are ignored on decode, as nats-server does.

// DeliverPolicy says where a consumer starts in its stream.
type DeliverPolicy string

// Deliver policies.
const (
	DeliverAll             DeliverPolicy = "all"
	DeliverLast            DeliverPolicy = "last"
	DeliverNew             DeliverPolicy = "new"
	DeliverByStartSequence DeliverPolicy = "by_start_sequence"
	DeliverByStartTime     DeliverPolicy = "by_start_time"
	DeliverLastPerSubject  DeliverPolicy = "last_per_subject"
)

// deliverUndefined is what nats-server's String() prints for an unknown
// policy; both the server and nats.go read it back as "all".
const deliverUndefined = "undefined"

// UnmarshalJSON accepts the known policies, "" (filled by Normalize) and
// "undefined" (read as all); anything else fails the request as invalid
// JSON, as with nats-server.
func (p *DeliverPolicy) UnmarshalJSON(b []byte) error {
	err := unmarshalEnum(b, (*string)(p), "deliver policy", string(DeliverAll), string(DeliverLast), string(DeliverNew),
		string(DeliverByStartSequence), string(DeliverByStartTime), string(DeliverLastPerSubject), deliverUndefined)
	if err == nil && *p == deliverUndefined {
		*p = DeliverAll
	}
	return err
}

// AckPolicy says which deliveries need an acknowledgement.
type AckPolicy string

// Ack policies.
const (
	AckNone     AckPolicy = "none"
	AckAll      AckPolicy = "all"
	AckExplicit AckPolicy = "explicit"
	// ackFlowControl is a push-only mode of recent servers. It decodes, so
	// that Normalize can refuse it as unsupported with a clear message
	// instead of "invalid JSON".
	ackFlowControl AckPolicy = "flow_control"
)

// UnmarshalJSON accepts the known policies (or "").
func (p *AckPolicy) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, (*string)(p), "ack policy", string(AckNone), string(AckAll), string(AckExplicit), string(ackFlowControl))
}

// ReplayPolicy says how fast stored messages are delivered: as fast as
// allowed, or with their original spacing.
type ReplayPolicy string

// Replay policies.
const (
	ReplayInstant  ReplayPolicy = "instant"
	ReplayOriginal ReplayPolicy = "original"
)

// UnmarshalJSON accepts "instant", "original" (or "").
func (p *ReplayPolicy) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, (*string)(p), "replay policy", string(ReplayInstant), string(ReplayOriginal))
}

// ConsumerConfig is a consumer's configuration: the "config" of a
// CONSUMER.CREATE request and of ConsumerInfo. Normalize fills the
// defaults nats-server fills and validates it against its stream; the
// normalized form is what is replicated, stored and echoed. Durations
// travel as integer nanoseconds. Field order follows nats-server's, so
// the echo reads the same.
type ConsumerConfig struct {
	Durable         string          `json:"durable_name,omitempty"`
	Name            string          `json:"name,omitempty"`
	Description     string          `json:"description,omitempty"`
	DeliverPolicy   DeliverPolicy   `json:"deliver_policy"`
	OptStartSeq     uint64          `json:"opt_start_seq,omitempty"`
	OptStartTime    *time.Time      `json:"opt_start_time,omitempty"`
	AckPolicy       AckPolicy       `json:"ack_policy"`
	AckWait         time.Duration   `json:"ack_wait,omitempty"`
	MaxDeliver      int             `json:"max_deliver,omitempty"`
	BackOff         []time.Duration `json:"backoff,omitempty"`
	FilterSubject   string          `json:"filter_subject,omitempty"`
	FilterSubjects  []string        `json:"filter_subjects,omitempty"`
	ReplayPolicy    ReplayPolicy    `json:"replay_policy"`
	RateLimit       uint64          `json:"rate_limit_bps,omitempty"` // refused by Normalize
	SampleFrequency string          `json:"sample_freq,omitempty"`    // refused by Normalize
	MaxWaiting      int             `json:"max_waiting,omitempty"`
	MaxAckPending   int             `json:"max_ack_pending,omitempty"`
	FlowControl     bool            `json:"flow_control,omitempty"`
	HeadersOnly     bool            `json:"headers_only,omitempty"`

	// Per pull request caps (0 = none).
	MaxRequestBatch    int           `json:"max_batch,omitempty"`
	MaxRequestExpires  time.Duration `json:"max_expires,omitempty"`
	MaxRequestMaxBytes int           `json:"max_bytes,omitempty"`

	// Push consumers only: a non-empty DeliverSubject makes it push.
	DeliverSubject string        `json:"deliver_subject,omitempty"`
	DeliverGroup   string        `json:"deliver_group,omitempty"`
	Heartbeat      time.Duration `json:"idle_heartbeat,omitempty"`

	InactiveThreshold time.Duration `json:"inactive_threshold,omitempty"`
	// Replicas is 0 for "as the stream"; it is echoed as sent, and the
	// CLI's schema wants the key present.
	Replicas      int               `json:"num_replicas"`
	MemoryStorage bool              `json:"mem_storage,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	PauseUntil    *time.Time        `json:"pause_until,omitempty"`

	// Priority groups (ADR-42) are outside the subset: Normalize refuses
	// them, so a valid config never echoes them and nats.go reports the
	// feature as unsupported instead of silently losing it.
	PriorityGroups  []string      `json:"priority_groups,omitempty"`
	PriorityPolicy  string        `json:"priority_policy,omitempty"`
	PriorityTimeout time.Duration `json:"priority_timeout,omitempty"`
}

// IsPush reports whether the consumer pushes to a deliver subject (as
// opposed to answering pull requests).
func (c *ConsumerConfig) IsPush() bool { return c.DeliverSubject != "" }

// IsDurable reports whether the consumer is durable: it is kept until
// deleted (or until its inactive threshold, when one is set), while an
// ephemeral one always goes away after its inactive threshold.
func (c *ConsumerConfig) IsDurable() bool { return c.Durable != "" }

// Filters returns the consumer's subject filters: FilterSubjects, or the
// single FilterSubject. Nil means every subject of the stream (so does a
// ">" filter). The slice is the config's own; do not modify it.
func (c *ConsumerConfig) Filters() []string {
	if len(c.FilterSubjects) > 0 {
		return c.FilterSubjects
	}
	if c.FilterSubject != "" {
		return []string{c.FilterSubject}
	}
	return nil
}

// ConsumerAction is a create request's "action": create-or-update (""),
// create only ("create": an identical existing consumer is success,
// anything else 10148) or update only ("update": 10149 if missing).
type ConsumerAction string

// Consumer actions.
const (
	ActionCreateOrUpdate ConsumerAction = ""
	ActionCreate         ConsumerAction = "create"
	ActionUpdate         ConsumerAction = "update"
)

// UnmarshalJSON accepts only the three actions; nats-server answers
// anything else with 10025 "invalid JSON: unknown consumer action".
func (a *ConsumerAction) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("can not unmarshal consumer action: %w", err)
	}
	switch ConsumerAction(s) {
	case ActionCreateOrUpdate, ActionCreate, ActionUpdate:
		*a = ConsumerAction(s)
		return nil
	}
	return fmt.Errorf("unknown consumer action: %q", s)
}

// ConsumerCreateRequest is a parsed CONSUMER.CREATE or DURABLE.CREATE
// request. Name is the resolved consumer name, also stored in
// Config.Name. Config is not normalized yet.
type ConsumerCreateRequest struct {
	Stream string         `json:"stream_name"`
	Config ConsumerConfig `json:"config"`
	Action ConsumerAction `json:"action"`
	Name   string         `json:"-"`
}

// SequenceInfo is a consumer sequence with its stream sequence, and when
// it last moved.
type SequenceInfo struct {
	Consumer uint64     `json:"consumer_seq"`
	Stream   uint64     `json:"stream_seq"`
	Last     *time.Time `json:"last_active,omitempty"`
}

// ConsumerInfo is the body of CONSUMER.CREATE/INFO responses and a
// CONSUMER.LIST entry (reference §2.7). Times must be UTC: they are
// echoed as RFC 3339 and the CLI's schemas expect "Z".
type ConsumerInfo struct {
	Stream         string         `json:"stream_name"`
	Name           string         `json:"name"`
	Created        time.Time      `json:"created"`
	Config         ConsumerConfig `json:"config"`
	Delivered      SequenceInfo   `json:"delivered"`
	AckFloor       SequenceInfo   `json:"ack_floor"`
	NumAckPending  int            `json:"num_ack_pending"`
	NumRedelivered int            `json:"num_redelivered"`
	NumWaiting     int            `json:"num_waiting"`
	NumPending     uint64         `json:"num_pending"`
	Cluster        *ClusterInfo   `json:"cluster,omitempty"`
	PushBound      bool           `json:"push_bound,omitempty"`
	TimeStamp      time.Time      `json:"ts"`
}

// Consumer error codes (nats-server errors.json, reference §2.2), in the
// style of the stream codes in stream_types.go.
const (
	JSErrConsumerCreate                 uint16 = 10012
	JSErrConsumerNameInUse              uint16 = 10013
	JSErrConsumerNotFound               uint16 = 10014
	JSErrConsumerDurableNotInSubject    uint16 = 10016
	JSErrConsumerDurableMismatch        uint16 = 10017
	JSErrConsumerDurableNotSet          uint16 = 10018
	JSErrConsumerEphemeralWithDurable   uint16 = 10020
	JSErrMaxConsumers                   uint16 = 10026
	JSErrConsumerDeliverToWildcards     uint16 = 10079
	JSErrConsumerPushMaxWaiting         uint16 = 10080
	JSErrConsumerDeliverCycle           uint16 = 10081
	JSErrConsumerMaxPendingAckPolicy    uint16 = 10082
	JSErrConsumerSmallHeartbeat         uint16 = 10083
	JSErrConsumerPullWithRateLimit      uint16 = 10086
	JSErrConsumerHBRequiresPush         uint16 = 10088
	JSErrConsumerFCRequiresPush         uint16 = 10089
	JSErrConsumerFilterNotSubset        uint16 = 10093
	JSErrConsumerInvalidPolicy          uint16 = 10094
	JSErrConsumerNameTooLong            uint16 = 10102
	JSErrConsumerBadDurableName         uint16 = 10103
	JSErrConsumerDescriptionTooLong     uint16 = 10107
	JSErrConsumerFCNeedsHeartbeats      uint16 = 10108
	JSErrConsumerInvalidDeliverSubject  uint16 = 10112
	JSErrConsumerMaxRequestExpires      uint16 = 10115
	JSErrConsumerMaxDeliverBackoff      uint16 = 10116
	JSErrConsumerMaxPendingAckExcess    uint16 = 10121
	JSErrConsumerReplicasExceedsStream  uint16 = 10126
	JSErrConsumerNamePathSeparators     uint16 = 10127
	JSErrConsumerFilterMismatch         uint16 = 10131
	JSErrConsumerDurableNameMismatch    uint16 = 10132
	JSErrConsumerMetadataLength         uint16 = 10135
	JSErrConsumerDuplicateFilters       uint16 = 10136
	JSErrConsumerMultipleFilters        uint16 = 10137
	JSErrConsumerOverlappingFilters     uint16 = 10138
	JSErrConsumerEmptyFilter            uint16 = 10139
	JSErrConsumerExists                 uint16 = 10148
	JSErrConsumerDoesNotExist           uint16 = 10149
	JSErrConsumerInactiveThresholdLimit uint16 = 10153
	JSErrConsumerAckPolicyInvalid       uint16 = 10181
	JSErrConsumerReplayPolicyInvalid    uint16 = 10182
	JSErrConsumerAckWaitNegative        uint16 = 10183
	JSErrConsumerBackOffNegative        uint16 = 10184
)

// ErrConsumerCreate is 10012 (500): nats-server's wrapper for a create or
// update that failed for a reason without its own code, such as an update
// that changes an immutable field ("deliver policy can not be updated").
func ErrConsumerCreate(reason string) *APIError {
	return NewAPIError(500, JSErrConsumerCreate, reason)
}

// ErrConsumerNameInUse is 10013.
func ErrConsumerNameInUse() *APIError {
	return NewAPIError(400, JSErrConsumerNameInUse, "consumer name already in use")
}

// ErrConsumerNotFound is 10014 (CONSUMER.INFO/DELETE of a missing one).
func ErrConsumerNotFound() *APIError {
	return NewAPIError(404, JSErrConsumerNotFound, "consumer not found")
}

// ErrConsumerDurableNotInSubject is 10016: DURABLE.CREATE without
// exactly <stream>.<durable> after it.
func ErrConsumerDurableNotInSubject() *APIError {
	return NewAPIError(400, JSErrConsumerDurableNotInSubject, "consumer expected to be durable but no durable name set in subject")
}

// ErrConsumerDurableMismatch is 10017: durable_name differs from the
// name in the subject.
func ErrConsumerDurableMismatch() *APIError {
	return NewAPIError(400, JSErrConsumerDurableMismatch, "consumer name in subject does not match durable name in request")
}

// ErrConsumerDurableNotSet is 10018: DURABLE.CREATE without durable_name.
func ErrConsumerDurableNotSet() *APIError {
	return NewAPIError(400, JSErrConsumerDurableNotSet, "consumer expected to be durable but a durable name was not set")
}

// ErrConsumerEphemeralWithDurable is 10020: the legacy ephemeral subject
// with a durable_name in the body.
func ErrConsumerEphemeralWithDurable() *APIError {
	return NewAPIError(400, JSErrConsumerEphemeralWithDurable, "consumer expected to be ephemeral but a durable name was set in request")
}

// ErrMaxConsumers is 10026: the stream's max_consumers is reached.
func ErrMaxConsumers() *APIError {
	return NewAPIError(400, JSErrMaxConsumers, "maximum consumers limit reached")
}

// ErrConsumerInvalidName is 10052 (nats-server reports an invalid
// consumer or durable name as an invalid config). durable selects the
// durable_name variant of the text.
func ErrConsumerInvalidName(durable bool) *APIError {
	what := "consumer name"
	if durable {
		what = "consumer durable name"
	}
	return ErrStreamInvalidConfig(what + ` can not contain '.', '*', '>', '\', '/'`)
}

// ErrConsumerInvalidFilter is 10052 "invalid subject": a filter that is
// not a valid subscription subject.
func ErrConsumerInvalidFilter() *APIError { return ErrStreamInvalidConfig("invalid subject") }

// ErrConsumerDeliverToWildcards is 10079.
func ErrConsumerDeliverToWildcards() *APIError {
	return NewAPIError(400, JSErrConsumerDeliverToWildcards, "consumer deliver subject has wildcards")
}

// ErrConsumerPushMaxWaiting is 10080.
func ErrConsumerPushMaxWaiting() *APIError {
	return NewAPIError(400, JSErrConsumerPushMaxWaiting, "consumer in push mode can not set max waiting")
}

// ErrConsumerDeliverCycle is 10081: the deliver subject is captured by
// the consumer's own stream.
func ErrConsumerDeliverCycle() *APIError {
	return NewAPIError(400, JSErrConsumerDeliverCycle, "consumer deliver subject forms a cycle")
}

// ErrConsumerMaxPendingAckPolicy is 10082: a push ack-none consumer with
// max_ack_pending.
func ErrConsumerMaxPendingAckPolicy() *APIError {
	return NewAPIError(400, JSErrConsumerMaxPendingAckPolicy, "consumer requires ack policy for max ack pending")
}

// ErrConsumerSmallHeartbeat is 10083.
func ErrConsumerSmallHeartbeat() *APIError {
	return NewAPIError(400, JSErrConsumerSmallHeartbeat, "consumer idle heartbeat needs to be >= 100ms")
}

// ErrConsumerPullWithRateLimit is 10086.
func ErrConsumerPullWithRateLimit() *APIError {
	return NewAPIError(400, JSErrConsumerPullWithRateLimit, "consumer in pull mode can not have rate limit set")
}

// ErrConsumerHBRequiresPush is 10088.
func ErrConsumerHBRequiresPush() *APIError {
	return NewAPIError(400, JSErrConsumerHBRequiresPush, "consumer idle heartbeat requires a push based consumer")
}

// ErrConsumerFCRequiresPush is 10089.
func ErrConsumerFCRequiresPush() *APIError {
	return NewAPIError(400, JSErrConsumerFCRequiresPush, "consumer flow control requires a push based consumer")
}

// ErrConsumerFilterNotSubset is 10093: a filter that no subject of the
// stream can match.
func ErrConsumerFilterNotSubset() *APIError {
	return NewAPIError(400, JSErrConsumerFilterNotSubset, "consumer filter subject is not a valid subset of the interest subjects")
}

// ErrConsumerInvalidPolicy is 10094 with nats-server's reason, e.g.
// "consumer delivery policy is deliver all, but optional start sequence
// is also set".
func ErrConsumerInvalidPolicy(reason string) *APIError {
	return NewAPIError(400, JSErrConsumerInvalidPolicy, reason)
}

// ErrConsumerNameTooLong is 10102.
func ErrConsumerNameTooLong(limit int) *APIError {
	return NewAPIError(400, JSErrConsumerNameTooLong, "consumer name is too long, maximum allowed is "+strconv.Itoa(limit))
}

// ErrConsumerBadDurableName is 10103.
func ErrConsumerBadDurableName() *APIError {
	return NewAPIError(400, JSErrConsumerBadDurableName, "durable name can not contain '.', '*', '>'")
}

// ErrConsumerDescriptionTooLong is 10107.
func ErrConsumerDescriptionTooLong(limit int) *APIError {
	return NewAPIError(400, JSErrConsumerDescriptionTooLong, "consumer description is too long, maximum allowed is "+strconv.Itoa(limit))
}

// ErrConsumerFCNeedsHeartbeats is 10108.
func ErrConsumerFCNeedsHeartbeats() *APIError {
	return NewAPIError(400, JSErrConsumerFCNeedsHeartbeats, "consumer with flow control also needs heartbeats")
}

// ErrConsumerInvalidDeliverSubject is 10112.
func ErrConsumerInvalidDeliverSubject() *APIError {
	return NewAPIError(400, JSErrConsumerInvalidDeliverSubject, "invalid push consumer deliver subject")
}

// ErrConsumerMaxRequestExpires is 10115.
func ErrConsumerMaxRequestExpires() *APIError {
	return NewAPIError(400, JSErrConsumerMaxRequestExpires, "consumer max request expires needs to be >= 1ms")
}

// ErrConsumerMaxDeliverBackoff is 10116.
func ErrConsumerMaxDeliverBackoff() *APIError {
	return NewAPIError(400, JSErrConsumerMaxDeliverBackoff, "max deliver is required to be > length of backoff values")
}

// ErrConsumerMaxPendingAckExcess is 10121: over the stream's
// consumer_limits.max_ack_pending.
func ErrConsumerMaxPendingAckExcess(limit int) *APIError {
	return NewAPIError(400, JSErrConsumerMaxPendingAckExcess, "consumer max ack pending exceeds system limit of "+strconv.Itoa(limit))
}

// ErrConsumerReplicasExceedsStream is 10126.
func ErrConsumerReplicasExceedsStream() *APIError {
	return NewAPIError(400, JSErrConsumerReplicasExceedsStream, "consumer config replica count exceeds parent stream")
}

// ErrConsumerNamePathSeparators is 10127.
func ErrConsumerNamePathSeparators() *APIError {
	return NewAPIError(400, JSErrConsumerNamePathSeparators, "Consumer name can not contain path separators")
}

// ErrConsumerFilterMismatch is 10131: the filter in the create subject
// differs from config.filter_subject.
func ErrConsumerFilterMismatch() *APIError {
	return NewAPIError(400, JSErrConsumerFilterMismatch, "Consumer create request did not match filtered subject from create subject")
}

// ErrConsumerDurableNameMismatch is 10132: name and durable_name differ.
func ErrConsumerDurableNameMismatch() *APIError {
	return NewAPIError(400, JSErrConsumerDurableNameMismatch, "Consumer Durable and Name have to be equal if both are provided")
}

// ErrConsumerMetadataLength is 10135; limit is e.g. "128KB".
func ErrConsumerMetadataLength(limit string) *APIError {
	return NewAPIError(400, JSErrConsumerMetadataLength, "consumer metadata exceeds maximum size of "+limit)
}

// ErrConsumerDuplicateFilters is 10136.
func ErrConsumerDuplicateFilters() *APIError {
	return NewAPIError(400, JSErrConsumerDuplicateFilters, "consumer cannot have both FilterSubject and FilterSubjects specified")
}

// ErrConsumerMultipleFilters is 10137: filter_subjects with the
// filtered create subject.
func ErrConsumerMultipleFilters() *APIError {
	return NewAPIError(400, JSErrConsumerMultipleFilters, "consumer with multiple subject filters cannot use subject based API")
}

// ErrConsumerOverlappingFilters is 10138.
func ErrConsumerOverlappingFilters() *APIError {
	return NewAPIError(400, JSErrConsumerOverlappingFilters, "consumer subject filters cannot overlap")
}

// ErrConsumerEmptyFilter is 10139.
func ErrConsumerEmptyFilter() *APIError {
	return NewAPIError(400, JSErrConsumerEmptyFilter, "consumer filter in FilterSubjects cannot be empty")
}

// ErrConsumerExists is 10148: action "create" on an existing consumer
// with a different configuration.
func ErrConsumerExists() *APIError {
	return NewAPIError(400, JSErrConsumerExists, "consumer already exists")
}

// ErrConsumerDoesNotExist is 10149: action "update" on a missing
// consumer.
func ErrConsumerDoesNotExist() *APIError {
	return NewAPIError(400, JSErrConsumerDoesNotExist, "consumer does not exist")
}

// ErrConsumerInactiveThresholdExcess is 10153: over the stream's
// consumer_limits.inactive_threshold.
func ErrConsumerInactiveThresholdExcess(limit time.Duration) *APIError {
	return NewAPIError(400, JSErrConsumerInactiveThresholdLimit, "consumer inactive threshold exceeds system limit of "+limit.String())
}

// ErrConsumerAckPolicyInvalid is 10181.
func ErrConsumerAckPolicyInvalid() *APIError {
	return NewAPIError(400, JSErrConsumerAckPolicyInvalid, "consumer ack policy invalid")
}

// ErrConsumerReplayPolicyInvalid is 10182.
func ErrConsumerReplayPolicyInvalid() *APIError {
	return NewAPIError(400, JSErrConsumerReplayPolicyInvalid, "consumer replay policy invalid")
}

// ErrConsumerAckWaitNegative is 10183.
func ErrConsumerAckWaitNegative() *APIError {
	return NewAPIError(400, JSErrConsumerAckWaitNegative, "consumer ack wait needs to be positive")
}

// ErrConsumerBackOffNegative is 10184.
func ErrConsumerBackOffNegative() *APIError {
	return NewAPIError(400, JSErrConsumerBackOffNegative, "consumer backoff needs to be positive")
}
