package broker

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Consumer defaults and limits (nats-server's, reference §2.7).
const (
	maxConsumerNameLen          = 255
	defaultConsumerAckWait      = 30 * time.Second
	defaultConsumerMaxAckPend   = 1000
	defaultConsumerMaxWaiting   = 512
	defaultEphemeralInactive    = 5 * time.Second
	minConsumerHeartbeat        = 100 * time.Millisecond
	minConsumerMaxExpires       = time.Millisecond
	generatedConsumerNameLength = 8
	priorityPolicyNone          = "none"
)

// Normalize fills the defaults nats-server fills and validates c against
// the stream it reads (which must be non-nil), in place. It is pure and
// idempotent: the leader normalizes a request before proposing it and the
// FSM normalizes it again when applying, against the same stream config.
//
// Defaults: deliver_policy all, ack_policy explicit, replay_policy
// instant, ack_wait 30s unless ack none (backoff[0] when backoff is set),
// max_deliver -1, max_waiting 512 for pull consumers, max_ack_pending and
// inactive_threshold from the stream's consumer_limits, else
// max_ack_pending 1000 unless ack none and inactive_threshold 5s for
// ephemerals; name = durable_name; a zero pause_until is dropped; times
// are UTC. Negative counts and durations that nats-server (outside its
// pedantic mode) resets to "unset" are reset the same way.
//
// Errors carry nats-server's codes and texts. Features outside the subset
// (rate limits, sampling, priority groups, ack policy flow_control) and a
// deliver_group on a pull consumer are refused with 10003. A filter that
// overlaps none of the stream's subjects is refused with 10093, which
// nats-server 2.15 no longer checks.
func (c *ConsumerConfig) Normalize(stream *StreamConfig) *APIError {
	if e := c.refuseUnsupported(); e != nil {
		return e
	}
	if e := c.normalizeIdentity(); e != nil {
		return e
	}
	if e := c.normalizePolicies(); e != nil {
		return e
	}
	c.fillDefaults(stream)
	if e := c.checkAcks(stream); e != nil {
		return e
	}
	if e := c.checkMode(stream); e != nil {
		return e
	}
	if e := c.normalizeFilters(stream); e != nil {
		return e
	}
	if e := c.checkStart(); e != nil {
		return e
	}
	if c.FlowControl && c.Heartbeat == 0 {
		return ErrConsumerFCNeedsHeartbeats()
	}
	return nil
}

func (c *ConsumerConfig) refuseUnsupported() *APIError {
	unsupported := func(what string) *APIError { return ErrBadRequest(what + unsupportedFeatureSuffix) }
	switch {
	case c.AckPolicy == ackFlowControl:
		return unsupported("ack policy flow_control is")
	case c.RateLimit > 0 && c.IsPush():
		return unsupported("consumer rate limits are") // a pull consumer gets nats-server's 10086
	case c.SampleFrequency != "":
		return unsupported("consumer sampling is")
	case len(c.PriorityGroups) > 0, c.PriorityTimeout > 0, c.PriorityPolicy != "" && c.PriorityPolicy != priorityPolicyNone:
		return unsupported("consumer priority groups are")
	}
	c.PriorityPolicy, c.PriorityGroups, c.PriorityTimeout = "", nil, 0
	return nil
}

func (c *ConsumerConfig) normalizeIdentity() *APIError {
	if c.Name != "" && !ValidStreamName(c.Name) {
		return ErrConsumerInvalidName(false)
	}
	if c.Durable != "" && !ValidStreamName(c.Durable) {
		return ErrConsumerInvalidName(true)
	}
	if c.Durable != "" && c.Name != "" && c.Durable != c.Name {
		return ErrConsumerDurableNameMismatch()
	}
	if c.Name == "" {
		c.Name = c.Durable
	}
	if c.Name == "" {
		// ParseConsumerCreate always resolves a name; reaching this is a
		// caller bug, but it must not create a nameless consumer.
		return ErrBadRequest("consumer name is required")
	}
	if len(c.Name) > maxConsumerNameLen {
		return ErrConsumerNameTooLong(maxConsumerNameLen)
	}
	if len(c.Description) > maxStreamDescriptionLen {
		return ErrConsumerDescriptionTooLong(maxStreamDescriptionLen)
	}
	n := 0
	for k, v := range c.Metadata {
		n += len(k) + len(v)
	}
	if n > maxStreamMetadataLen {
		return ErrConsumerMetadataLength(strconv.Itoa(maxStreamMetadataLen>>10) + "KB")
	}
	if len(c.Metadata) == 0 {
		c.Metadata = nil
	}
	return nil
}

func (c *ConsumerConfig) normalizePolicies() *APIError {
	switch c.DeliverPolicy {
	case "":
		c.DeliverPolicy = DeliverAll
	case DeliverAll, DeliverLast, DeliverNew, DeliverByStartSequence, DeliverByStartTime, DeliverLastPerSubject:
	default:
		return ErrConsumerInvalidPolicy("consumer deliver policy invalid")
	}
	switch c.AckPolicy {
	case "":
		// nats.go's jetstream zero value marshals as "explicit" too.
		c.AckPolicy = AckExplicit
	case AckNone, AckAll, AckExplicit:
	default:
		return ErrConsumerAckPolicyInvalid()
	}
	switch c.ReplayPolicy {
	case "":
		c.ReplayPolicy = ReplayInstant
	case ReplayInstant, ReplayOriginal:
	default:
		return ErrConsumerReplayPolicyInvalid()
	}
	return nil
}

// fillDefaults follows nats-server's order, which matters: backoff[0]
// overrides ack_wait, and the stream's consumer limits come before the
// built-in defaults.
func (c *ConsumerConfig) fillDefaults(stream *StreamConfig) {
	if c.MaxDeliver == 0 || c.MaxDeliver < -1 {
		c.MaxDeliver = -1
	}
	if c.MaxAckPending < -1 {
		c.MaxAckPending = -1
	}
	c.MaxWaiting = max(c.MaxWaiting, 0)
	c.MaxRequestBatch = max(c.MaxRequestBatch, 0)
	c.MaxRequestExpires = max(c.MaxRequestExpires, 0)
	c.MaxRequestMaxBytes = max(c.MaxRequestMaxBytes, 0)
	c.Heartbeat = max(c.Heartbeat, 0)
	c.InactiveThreshold = max(c.InactiveThreshold, 0)

	if !c.IsPush() && c.MaxWaiting == 0 {
		c.MaxWaiting = defaultConsumerMaxWaiting
	}
	if c.AckWait == 0 && c.AckPolicy != AckNone {
		c.AckWait = defaultConsumerAckWait
	}
	if len(c.BackOff) > 0 {
		c.AckWait = c.BackOff[0]
	} else {
		c.BackOff = nil
	}
	if lim := stream.ConsumerLimits.MaxAckPending; c.MaxAckPending == 0 && lim > 0 {
		c.MaxAckPending = lim
	}
	if lim := stream.ConsumerLimits.InactiveThreshold; c.InactiveThreshold == 0 && lim > 0 {
		c.InactiveThreshold = lim
	}
	if c.MaxAckPending == 0 && c.AckPolicy != AckNone {
		c.MaxAckPending = defaultConsumerMaxAckPend
	}
	if c.InactiveThreshold == 0 && !c.IsDurable() {
		c.InactiveThreshold = defaultEphemeralInactive
	}
	c.OptStartTime = timePtrUTC(c.OptStartTime)
	c.PauseUntil = timePtrUTC(c.PauseUntil)
	if c.PauseUntil != nil && c.PauseUntil.IsZero() {
		c.PauseUntil = nil // the CLI always sends the zero time: not paused
	}
}

// timePtrUTC returns a UTC copy of *t (nil for nil), so a normalized config
// never shares a time with the request it came from.
func timePtrUTC(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (c *ConsumerConfig) checkAcks(stream *StreamConfig) *APIError {
	if c.Replicas > 0 && c.Replicas > max(stream.Replicas, 1) {
		return ErrConsumerReplicasExceedsStream()
	}
	if c.Replicas < 0 {
		return NewAPIError(400, JSErrReplicasNegative, "replicas count cannot be negative")
	}
	for _, b := range c.BackOff {
		if b < 0 {
			return ErrConsumerBackOffNegative()
		}
	}
	if c.AckWait < 0 {
		return ErrConsumerAckWaitNegative()
	}
	// nats-server's rule is max_deliver >= len(backoff), whatever its
	// error text says.
	if n := len(c.BackOff); n > 0 && c.MaxDeliver != -1 && n > c.MaxDeliver {
		return ErrConsumerMaxDeliverBackoff()
	}
	if lim := stream.ConsumerLimits.MaxAckPending; lim > 0 && c.MaxAckPending > lim {
		return ErrConsumerMaxPendingAckExcess(lim)
	}
	if lim := stream.ConsumerLimits.InactiveThreshold; lim > 0 && c.InactiveThreshold > lim {
		return ErrConsumerInactiveThresholdExcess(lim)
	}
	return nil
}

// checkMode applies the push-only and pull-only rules.
func (c *ConsumerConfig) checkMode(stream *StreamConfig) *APIError {
	if !c.IsPush() {
		switch {
		case c.DeliverGroup != "":
			return ErrBadRequest("consumer deliver group requires a push based consumer")
		case c.RateLimit > 0:
			return ErrConsumerPullWithRateLimit()
		case c.Heartbeat > 0:
			return ErrConsumerHBRequiresPush()
		case c.FlowControl:
			return ErrConsumerFCRequiresPush()
		case c.MaxRequestExpires != 0 && c.MaxRequestExpires < minConsumerMaxExpires:
			return ErrConsumerMaxRequestExpires()
		}
		return nil
	}
	switch {
	case !isLiteral(c.DeliverSubject):
		return ErrConsumerDeliverToWildcards()
	case !ValidSubject(c.DeliverSubject):
		return ErrConsumerInvalidDeliverSubject()
	case c.MaxWaiting != 0:
		return ErrConsumerPushMaxWaiting()
	case c.MaxAckPending > 0 && c.AckPolicy == AckNone:
		return ErrConsumerMaxPendingAckPolicy()
	case c.Heartbeat > 0 && c.Heartbeat < minConsumerHeartbeat:
		return ErrConsumerSmallHeartbeat()
	}
	// Delivering into a subject the stream captures would store every
	// delivery again and deliver it again, forever.
	for _, s := range streamSubjects(stream) {
		if subjectIsSubset(c.DeliverSubject, s) {
			return ErrConsumerDeliverCycle()
		}
	}
	return nil
}

// streamSubjects is the stream's subjects, or its name when it has none
// (what StreamConfig.Normalize would fill in).
func streamSubjects(stream *StreamConfig) []string {
	if len(stream.Subjects) == 0 {
		return []string{stream.Name}
	}
	return stream.Subjects
}

func (c *ConsumerConfig) normalizeFilters(stream *StreamConfig) *APIError {
	if c.FilterSubject != "" && len(c.FilterSubjects) > 0 {
		return ErrConsumerDuplicateFilters()
	}
	if c.FilterSubject != "" && !ValidSubject(c.FilterSubject) {
		return ErrConsumerInvalidFilter()
	}
	if slices.Contains(c.FilterSubjects, "") {
		return ErrConsumerEmptyFilter()
	}
	if len(c.FilterSubjects) == 0 {
		c.FilterSubjects = nil
	}
	filters := c.Filters()
	for i, f := range filters {
		if !ValidSubject(f) {
			return ErrConsumerInvalidFilter()
		}
		// As in nats-server, filters "overlap" when one contains the
		// other (duplicates included); "a.*" and "*.b" may coexist.
		for j, g := range filters {
			if i != j && subjectIsSubset(f, g) {
				return ErrConsumerOverlappingFilters()
			}
		}
		if !slices.ContainsFunc(streamSubjects(stream), func(s string) bool { return SubjectsOverlap(f, s) }) {
			return ErrConsumerFilterNotSubset()
		}
	}
	return nil
}

// checkStart checks that opt_start_seq and opt_start_time come exactly
// with the deliver policies that use them, with nats-server's texts.
func (c *ConsumerConfig) checkStart() *APIError {
	alsoSet := func(dp, start string) *APIError {
		return ErrConsumerInvalidPolicy("consumer delivery policy is deliver " + dp + ", but optional start " + start + " is also set")
	}
	notSet := func(dp, what string) *APIError {
		return ErrConsumerInvalidPolicy("consumer delivery policy is deliver " + dp + ", but optional " + what + " is not set")
	}
	seq, tm := c.OptStartSeq > 0, c.OptStartTime != nil
	var dp string
	switch c.DeliverPolicy {
	case DeliverAll:
		dp = "all"
	case DeliverLast:
		dp = "last"
	case DeliverNew:
		dp = "new"
	case DeliverLastPerSubject:
		dp = "last per subject"
		if !seq && !tm && len(c.Filters()) == 0 {
			return notSet(dp, "filter subject")
		}
	case DeliverByStartSequence:
		if !seq {
			return notSet("by start sequence", "start sequence")
		}
		if tm {
			return alsoSet("by start sequence", "time")
		}
		return nil
	case DeliverByStartTime:
		if !tm {
			return notSet("by start time", "start time")
		}
		if seq {
			return alsoSet("by start time", "start sequence")
		}
		return nil
	}
	if seq {
		return alsoSet(dp, "sequence")
	}
	if tm {
		return alsoSet(dp, "time")
	}
	return nil
}

// CheckConsumerUpdate returns nil when the normalized config cur may be
// replaced by the normalized next, else nats-server's refusal: 10012 with
// its reason (e.g. "deliver policy can not be updated") or 10116.
//
// What may change: ack_wait, max_deliver, backoff, max_ack_pending,
// filters, description, inactive_threshold, metadata, headers_only, the
// pull request caps, num_replicas, deliver_group and a push consumer's
// deliver_subject. nats-server refuses the last with 10013 while the old
// deliver subject still has interest, which the caller must check: this
// function cannot see interest. nats-server also keeps the current
// pause_until on update, which the caller applies.
func CheckConsumerUpdate(cur, next *ConsumerConfig) *APIError {
	if SameConsumerConfig(cur, next) {
		return nil
	}
	reason := ""
	switch {
	case cur.DeliverPolicy != next.DeliverPolicy:
		reason = "deliver policy can not be updated"
	case cur.MemoryStorage != next.MemoryStorage:
		reason = "storage type can not be updated"
	case cur.OptStartSeq != next.OptStartSeq:
		reason = "start sequence can not be updated"
	case !timePtrEqual(cur.OptStartTime, next.OptStartTime):
		reason = "start time can not be updated"
	case cur.AckPolicy != next.AckPolicy:
		reason = "ack policy can not be updated"
	case cur.ReplayPolicy != next.ReplayPolicy:
		reason = "replay policy can not be updated"
	case cur.Heartbeat != next.Heartbeat:
		reason = "heart beats can not be updated"
	case cur.FlowControl != next.FlowControl:
		reason = "flow control can not be updated"
	case !cur.IsPush() && next.IsPush():
		reason = "can not update pull consumer to push based"
	case cur.IsPush() && !next.IsPush():
		reason = "can not update push consumer to pull based"
	case cur.MaxWaiting != next.MaxWaiting:
		reason = "max waiting can not be updated"
	}
	if reason != "" {
		return ErrConsumerCreate(reason)
	}
	if n := len(next.BackOff); n > 0 && next.MaxDeliver != -1 && n > next.MaxDeliver {
		return ErrConsumerMaxDeliverBackoff()
	}
	return nil
}

// SameConsumerConfig reports whether two normalized configs are the same
// consumer configuration: action "create" on an existing consumer
// succeeds only then. Like StreamConfig.Equal it ignores server-managed
// metadata keys ("_nats." prefix), absent versus empty collections, and
// the location of equal times.
func SameConsumerConfig(a, b *ConsumerConfig) bool {
	if !timePtrEqual(a.OptStartTime, b.OptStartTime) || !timePtrEqual(a.PauseUntil, b.PauseUntil) {
		return false
	}
	return reflect.DeepEqual(a.comparable(), b.comparable())
}

func (c *ConsumerConfig) comparable() ConsumerConfig {
	out := *c
	out.OptStartTime, out.PauseUntil = nil, nil // compared by timePtrEqual
	out.Metadata = userMetadata(c.Metadata)
	if len(out.BackOff) == 0 {
		out.BackOff = nil
	}
	if len(out.FilterSubjects) == 0 {
		out.FilterSubjects = nil
	}
	if len(out.PriorityGroups) == 0 {
		out.PriorityGroups = nil
	}
	return out
}

func timePtrEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// clone returns a deep copy, so a config handed out never shares slices,
// maps or times with the FSM's own.
func (c ConsumerConfig) clone() ConsumerConfig {
	c.BackOff = slices.Clone(c.BackOff)
	c.FilterSubjects = slices.Clone(c.FilterSubjects)
	c.PriorityGroups = slices.Clone(c.PriorityGroups)
	c.Metadata = maps.Clone(c.Metadata)
	c.OptStartTime = timePtrCopy(c.OptStartTime)
	c.PauseUntil = timePtrCopy(c.PauseUntil)
	return c
}

func timePtrCopy(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := *t
	return &u
}

// ValidConsumerName reports whether name can name a consumer: the rules
// of ValidStreamName (no '.', '*', '>', path separators or whitespace;
// the name is a token of API and ack subjects) and at most 255 bytes.
func ValidConsumerName(name string) bool {
	return len(name) <= maxConsumerNameLen && ValidStreamName(name)
}

// The create operations ParseConsumerCreate accepts (the $JS.API. subject
// without its prefix, up to the stream token).
const (
	opConsumerCreate        = "CONSUMER.CREATE"
	opConsumerDurableCreate = "CONSUMER.DURABLE.CREATE"
)

// ParseConsumerCreate parses a consumer create request (reference §2.7).
// op is "CONSUMER.CREATE" or "CONSUMER.DURABLE.CREATE"; arg is the rest
// of the subject after op and its dot:
//
//	CONSUMER.CREATE          S             legacy ephemeral: name from config.name, else generated
//	CONSUMER.CREATE          S.C           name C
//	CONSUMER.CREATE          S.C.f.>       name C, filter "f.>" (all remaining tokens)
//	CONSUMER.DURABLE.CREATE  S.C           legacy durable C
//
// It checks the request the way nats-server does before looking at the
// stream: body JSON and action (10025), the subject's shape (10016),
// stream_name against the subject (10056; an absent stream_name is a
// mismatch too), durable_name against the subject (10017, 10018, 10020),
// the subject's filter against the config (10131, 10137), path separators
// (10127) and the name (10052, 10102). A stream token that cannot name a
// stream is 10059, as it would be from the lookup. The resolved name is
// also stored in Config.Name. The config is not normalized: the caller
// does that against the stream's config.
//
// A legacy ephemeral request without a name gets a random 8-character
// [A-Za-z0-9] name, so this is the one impure step of a create; call it
// once, on the node that proposes.
func ParseConsumerCreate(op, arg string, body []byte) (*ConsumerCreateRequest, *APIError) {
	if op != opConsumerCreate && op != opConsumerDurableCreate {
		return nil, ErrBadRequest("not a consumer create request")
	}
	var req ConsumerCreateRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, ErrInvalidJSON(err)
	}
	if arg == "" {
		return nil, ErrBadRequest("consumer create request without a stream name")
	}
	stream, rest, hasName := strings.Cut(arg, ".")
	name, filter, _ := strings.Cut(rest, ".")
	legacyDurable := op == opConsumerDurableCreate
	if legacyDurable && (!hasName || strings.Contains(rest, ".")) {
		return nil, ErrConsumerDurableNotInSubject()
	}
	if stream != req.Stream {
		return nil, ErrStreamMismatch()
	}
	if !hasName {
		name = req.Config.Name // legacy ephemeral: the body may name it
	}
	if strings.ContainsAny(name, `\/`) {
		return nil, ErrConsumerNamePathSeparators()
	}
	switch {
	case legacyDurable && req.Config.Durable == "":
		return nil, ErrConsumerDurableNotSet()
	case hasName && req.Config.Durable != "" && req.Config.Durable != name:
		return nil, ErrConsumerDurableMismatch()
	case !hasName && req.Config.Durable != "":
		return nil, ErrConsumerEphemeralWithDurable()
	case filter != "" && len(req.Config.FilterSubjects) > 0:
		return nil, ErrConsumerMultipleFilters()
	case filter != "" && req.Config.FilterSubject != filter:
		return nil, ErrConsumerFilterMismatch()
	}
	if !ValidStreamName(stream) {
		return nil, ErrStreamNotFound()
	}
	if name == "" && !hasName {
		name = randomConsumerName()
	}
	if !ValidStreamName(name) {
		return nil, ErrConsumerInvalidName(false)
	}
	if len(name) > maxConsumerNameLen {
		return nil, ErrConsumerNameTooLong(maxConsumerNameLen)
	}
	// The subject's name wins over config.name, as in nats-server.
	req.Name, req.Config.Name = name, name
	return &req, nil
}

const consumerNameAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomConsumerName names a legacy ephemeral consumer. With 62^8
// possible names a clash with an existing consumer is negligible.
func randomConsumerName() string {
	b := make([]byte, generatedConsumerNameLength)
	for i := range b {
		b[i] = consumerNameAlphabet[rand.IntN(len(consumerNameAlphabet))]
	}
	return string(b)
}
