package broker

import (
	"bytes"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Stream configuration limits and defaults (nats-server's, reference §2.4).
const (
	maxStreamNameLen         = 255
	maxStreamDescriptionLen  = 4096
	maxStreamMetadataLen     = 128 << 10
	maxStreamReplicas        = 5
	defaultDuplicateWindow   = 2 * time.Minute
	minStreamDuration        = 100 * time.Millisecond // max_age and duplicate_window floor
	compressionNone          = "none"
	compressionS2            = "s2"
	serverMetadataPrefix     = "_nats."
	unsupportedFeatureSuffix = " not supported by this server"
)

// Normalize validates c and fills the defaults nats-server fills, in
// place: subjects [name], 0 -> -1 for max_* and max_consumers, duplicate
// window 2m (or max_age if smaller), replicas 1, compression "none",
// storage file, retention and discard limits/old. It is idempotent, so
// the leader may normalize a request before proposing it and the FSM
// normalizes it again when applying.
//
// All three retention policies are implemented (consumer_retention.go). Storage "memory" is accepted and echoed, but the
// messages are stored in the node's state file like "file" ones (durable
// either way); compression "s2" is likewise accepted and not applied.
// Mirrors, sources, subject transforms and republish are refused with
// 10003. Everything else invalid is 10052, as with nats-server.
func (c *StreamConfig) Normalize() *APIError {
	if e := c.refuseUnsupported(); e != nil {
		return e
	}
	if e := c.normalizeIdentity(); e != nil {
		return e
	}
	if e := c.normalizePolicies(); e != nil {
		return e
	}
	c.normalizeLimits()
	if e := c.normalizeDurations(); e != nil {
		return e
	}
	if c.DenyPurge && c.AllowRollup {
		return ErrStreamInvalidConfig("roll-ups require the purge permission")
	}
	if c.DiscardNewPer {
		if c.Discard != DiscardNew {
			return ErrStreamInvalidConfig("discard new per subject requires discard new policy to be set")
		}
		if c.MaxMsgsPerSubject <= 0 {
			return ErrStreamInvalidConfig("discard new per subject requires max msgs per subject > 0")
		}
	}
	return c.normalizeSubjects()
}

func (c *StreamConfig) refuseUnsupported() *APIError {
	for _, f := range []struct {
		name string
		raw  []byte
	}{
		{"stream mirrors are", c.Mirror},
		{"stream sources are", c.Sources},
		{"stream subject transforms are", c.SubjectTransform},
		{"stream republish is", c.RePublish},
	} {
		if len(f.raw) > 0 && !bytes.Equal(bytes.TrimSpace(f.raw), []byte("null")) {
			return ErrBadRequest(f.name + unsupportedFeatureSuffix)
		}
	}
	c.Mirror, c.Sources, c.SubjectTransform, c.RePublish = nil, nil, nil, nil
	return nil
}

func (c *StreamConfig) normalizeIdentity() *APIError {
	if !ValidStreamName(c.Name) {
		return ErrStreamInvalidConfig(`stream name is required and can not contain '.', '*', '>', '\', '/'`)
	}
	if len(c.Name) > maxStreamNameLen {
		return ErrStreamInvalidConfig("stream name is too long, maximum allowed is " + strconv.Itoa(maxStreamNameLen))
	}
	if len(c.Description) > maxStreamDescriptionLen {
		return ErrStreamInvalidConfig("stream description is too long, maximum allowed is " + strconv.Itoa(maxStreamDescriptionLen))
	}
	n := 0
	for k, v := range c.Metadata {
		n += len(k) + len(v)
	}
	if n > maxStreamMetadataLen {
		return ErrStreamInvalidConfig("stream metadata exceeds maximum size of " + strconv.Itoa(maxStreamMetadataLen) + " bytes")
	}
	return nil
}

func (c *StreamConfig) normalizePolicies() *APIError {
	switch c.Retention {
	case "":
		c.Retention = LimitsPolicy
	case LimitsPolicy, WorkQueuePolicy, InterestPolicy:
	default:
		return ErrStreamInvalidConfig("invalid retention")
	}
	switch c.Discard {
	case "":
		c.Discard = DiscardOld
	case DiscardOld, DiscardNew:
	default:
		return ErrStreamInvalidConfig("invalid discard policy")
	}
	switch c.Storage {
	case "":
		c.Storage = FileStorage
	case FileStorage, MemoryStorage:
	default:
		return ErrStreamInvalidConfig("invalid storage type")
	}
	switch c.Compression {
	case "":
		c.Compression = compressionNone
	case compressionNone, compressionS2:
	default:
		return ErrStreamInvalidConfig("invalid compression")
	}
	switch {
	case c.Replicas == 0:
		c.Replicas = 1
	case c.Replicas < 0:
		return NewAPIError(400, JSErrReplicasNegative, "replicas count cannot be negative")
	case c.Replicas > maxStreamReplicas:
		return ErrStreamInvalidConfig("maximum replicas is " + strconv.Itoa(maxStreamReplicas))
	}
	return nil
}

// normalizeLimits maps 0 (and any negative value) to -1, "unlimited":
// the CLI's schema requires max_* >= -1.
func (c *StreamConfig) normalizeLimits() {
	unlimited := func(v *int64) {
		if *v <= 0 {
			*v = -1
		}
	}
	unlimited(&c.MaxMsgs)
	unlimited(&c.MaxBytes)
	unlimited(&c.MaxMsgsPerSubject)
	if c.MaxMsgSize <= 0 {
		c.MaxMsgSize = -1
	}
	if c.MaxConsumers <= 0 {
		c.MaxConsumers = -1
	}
}

func (c *StreamConfig) normalizeDurations() *APIError {
	if c.MaxAge < 0 {
		return ErrStreamInvalidConfig("max age can not be negative")
	}
	if c.MaxAge != 0 && c.MaxAge < minStreamDuration {
		return ErrStreamInvalidConfig("max age needs to be >= 100ms")
	}
	if c.Duplicates == 0 {
		c.Duplicates = defaultDuplicateWindow
		if c.MaxAge != 0 && c.MaxAge < c.Duplicates {
			c.Duplicates = c.MaxAge
		}
	}
	if c.Duplicates < 0 {
		return ErrStreamInvalidConfig("duplicates window can not be negative")
	}
	if c.MaxAge != 0 && c.Duplicates > c.MaxAge {
		return ErrStreamInvalidConfig("duplicates window can not be larger then max age")
	}
	if c.Duplicates < minStreamDuration {
		return ErrStreamInvalidConfig("duplicates window needs to be >= 100ms")
	}
	return nil
}

// jsReservedSubjects may only be captured by no-ack streams, or a stream
// would swallow (and acknowledge) JetStream's own API traffic.
var jsReservedSubjects = []string{"$JS.>", "$JSC.>", "$NRG.>"}

func (c *StreamConfig) normalizeSubjects() *APIError {
	if len(c.Subjects) == 0 {
		c.Subjects = []string{c.Name}
		return nil
	}
	for i, s := range c.Subjects {
		if !ValidSubject(s) {
			return ErrStreamInvalidConfig("invalid subject")
		}
		if slices.Contains(c.Subjects[:i], s) {
			return ErrStreamInvalidConfig("duplicate subjects detected")
		}
		if c.NoAck {
			continue
		}
		if s == tailTok {
			return ErrStreamInvalidConfig("capturing all subjects requires no-ack to be true")
		}
		for _, r := range jsReservedSubjects {
			if SubjectsOverlap(s, r) && !subjectIsSubset(s, "$JS.EVENT.>") {
				return ErrStreamInvalidConfig("subjects that overlap with jetstream api require no-ack to be true")
			}
		}
	}
	return nil
}

// checkUpdate refuses the changes nats-server refuses and applies the
// adjustments sealing implies. Both configs are normalized.
func checkUpdate(old StreamConfig, upd *StreamConfig) *APIError {
	switch {
	case upd.Name != old.Name:
		return ErrStreamInvalidConfig("stream configuration name must match original")
	case upd.Storage != old.Storage:
		return ErrStreamInvalidConfig("stream configuration update can not change storage type")
	case upd.Retention != old.Retention:
		return ErrStreamInvalidConfig("stream configuration update can not change retention policy")
	case old.Sealed && !upd.Sealed:
		return ErrStreamInvalidConfig("stream configuration update can not unseal a sealed stream")
	case old.DenyDelete && !upd.DenyDelete:
		return ErrStreamInvalidConfig("stream configuration update can not cancel deny message deletes")
	case old.DenyPurge && !upd.DenyPurge:
		return ErrStreamInvalidConfig("stream configuration update can not cancel deny purge")
	}
	if upd.Sealed {
		// A sealed stream never changes again: nothing ages out, nothing
		// is deleted, purged or rolled up, and publishes are refused.
		upd.MaxAge = 0
		upd.Discard = DiscardNew
		upd.DenyDelete, upd.DenyPurge = true, true
		upd.AllowRollup = false
	}
	return nil
}

// Equal reports whether two normalized configs describe the same stream,
// ignoring server-managed metadata keys ("_nats." prefix) and the
// difference between absent and empty collections. Idempotent CREATE
// compares with it.
func (c StreamConfig) Equal(o StreamConfig) bool {
	a, b := c.comparable(), o.comparable()
	return reflect.DeepEqual(a, b)
}

func (c StreamConfig) comparable() StreamConfig {
	c.Metadata = userMetadata(c.Metadata)
	if len(c.Subjects) == 0 {
		c.Subjects = nil
	}
	c.Mirror, c.Sources, c.SubjectTransform, c.RePublish = nil, nil, nil, nil
	return c
}

func userMetadata(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if strings.HasPrefix(k, serverMetadataPrefix) {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(m))
		}
		out[k] = v
	}
	return out
}

// clone returns a deep copy, so a StreamInfo handed to a caller never
// shares slices or maps with the FSM's catalog.
func (c StreamConfig) clone() StreamConfig {
	c.Subjects = slices.Clone(c.Subjects)
	c.Metadata = maps.Clone(c.Metadata)
	return c
}

// ValidStreamName reports whether name can name a stream (or a consumer):
// non-empty, and none of '.', '*', '>' (they break subjects such as
// $JS.API.STREAM.INFO.<name> and ack subjects), path separators or
// whitespace/control characters.
func ValidStreamName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '.', c == '*', c == '>', c == '/', c == '\\', c < ' ', c == ' ', c == 0x7f:
			return false
		}
	}
	return true
}

// SubjectsOverlap reports whether some literal subject is matched by both
// patterns (wildcards allowed in either).
func SubjectsOverlap(a, b string) bool {
	for {
		ta, ra, ma := strings.Cut(a, ".")
		tb, rb, mb := strings.Cut(b, ".")
		if (ta == tailTok && !ma) || (tb == tailTok && !mb) {
			return true // both still have a token here, and ">" takes the rest
		}
		if ta != starTok && tb != starTok && ta != tb {
			return false
		}
		if !ma || !mb {
			return ma == mb
		}
		a, b = ra, rb
	}
}

// subjectIsSubset reports whether every subject pattern s matches is also
// matched by pattern super.
func subjectIsSubset(s, super string) bool {
	for {
		ts, rs, ms := strings.Cut(s, ".")
		tp, rp, mp := strings.Cut(super, ".")
		switch {
		case tp == tailTok && !mp:
			return true
		case ts == tailTok:
			return false // s covers any depth here; super is narrower
		case tp != starTok && (ts == starTok || ts != tp):
			return false
		}
		if !ms || !mp {
			return ms == mp
		}
		s, super = rs, rp
	}
}
