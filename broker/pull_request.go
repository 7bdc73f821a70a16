package broker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// PullRequest is one parsed $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
// request (reference §2.8). The zero values of the optional fields mean
// "not asked for": no expiry, no byte budget, no heartbeats.
type PullRequest struct {
	// Batch is the number of messages wanted, always >= 1.
	Batch int
	// Expires is the request's lifetime; 0 means it never expires. A
	// negative value is kept as sent: nats-server treats such a request as
	// already expired.
	Expires time.Duration
	// NoWait asks for an immediate answer (404 No Messages when nothing is
	// available and Expires is 0).
	NoWait bool
	// MaxBytes is the byte budget for the whole batch; 0 means none.
	MaxBytes int
	// Heartbeat is the idle heartbeat interval; 0 means none. When set it
	// is at most Expires/2.
	Heartbeat time.Duration

	// The priority-group fields (ADR-42). Flotilla has no priority
	// policies, so they only matter to CheckPriority; nats.go sends them
	// only to consumers whose config lists priority groups.
	Group         string
	MinPending    int64
	MinAckPending int64
	PinID         string
	Priority      int
}

// Reasons for "400 Bad Request - <reason>" answers that do not come from
// the JSON decoder. The texts are nats-server's.
const (
	reasonHeartbeatTooLarge = "heartbeat value too large"
	reasonNotOverflow       = "Not a Overflow Priority consumer"
	reasonNotPinned         = "Not a Pinned Client Priority consumer"
	reasonBadPriority       = "Priority must be between 0 and 9"
)

// ParsePullRequest parses the body of a CONSUMER.MSG.NEXT request. It
// accepts, after trimming surrounding whitespace, an empty body (batch
// 1), a bare decimal integer (that batch) or a JSON object with batch,
// expires (ns), no_wait, max_bytes, idle_heartbeat (ns) and the
// priority-group fields. On failure it returns the reason to send as
// StatusBadRequest(reason); the reason is "" when the request is good.
//
// It follows nats-server v2.15 (consumer.go nextReqFromMsg) where that is
// observable by a client:
//   - a body that is neither JSON nor an integer is not an error: it is
//     a request for one message;
//   - a batch <= 0 is a request for one message (nats-server queues it and
//     delivers exactly one), so Batch is normalised to 1;
//   - a heartbeat larger than half of expires, including any heartbeat
//     without expires, is "heartbeat value too large";
//   - JSON errors are reported with the decoder's text, which names the
//     same struct and fields as nats-server's, so the reasons match.
//
// Negative max_bytes and idle_heartbeat values mean "none" and are
// normalised to 0.
func ParsePullRequest(body []byte) (PullRequest, string) {
	req := bytes.TrimSpace(body)
	switch {
	case len(req) == 0:
		return PullRequest{Batch: 1}, ""
	case req[0] == '{':
		return parsePullJSON(req)
	default:
		n, err := strconv.Atoi(string(req))
		if err != nil {
			n = 1
		}
		return PullRequest{Batch: max(n, 1)}, ""
	}
}

// parsePullJSON decodes the JSON form of a pull request.
func parsePullJSON(req []byte) (PullRequest, string) {
	// The wire structs carry nats-server's type names on purpose: the
	// decoder's type-mismatch errors name them ("Go struct field
	// JSApiConsumerGetNextRequest.batch of type int") and those errors are
	// sent to the client verbatim, as nats-server does.
	type PriorityGroup struct {
		Group         string `json:"group"`
		MinPending    int64  `json:"min_pending"`
		MinAckPending int64  `json:"min_ack_pending"`
		ID            string `json:"id"`
		Priority      int    `json:"priority"`
	}
	type JSApiConsumerGetNextRequest struct {
		Expires   time.Duration `json:"expires"`
		Batch     int           `json:"batch"`
		MaxBytes  int           `json:"max_bytes"`
		NoWait    bool          `json:"no_wait"`
		Heartbeat time.Duration `json:"idle_heartbeat"`
		PriorityGroup
	}
	var w JSApiConsumerGetNextRequest
	if err := json.Unmarshal(req, &w); err != nil {
		return PullRequest{}, err.Error()
	}
	// nats-server tests hb*2 > expires, which can overflow; hb > expires/2
	// is the same test for every hb > 0 (division truncates) without it.
	if w.Heartbeat > 0 && w.Heartbeat > w.Expires/2 {
		return PullRequest{}, reasonHeartbeatTooLarge
	}
	return PullRequest{
		Batch:         max(w.Batch, 1),
		Expires:       w.Expires,
		NoWait:        w.NoWait,
		MaxBytes:      max(w.MaxBytes, 0),
		Heartbeat:     max(w.Heartbeat, 0),
		Group:         w.Group,
		MinPending:    w.MinPending,
		MinAckPending: w.MinAckPending,
		PinID:         w.ID,
		Priority:      w.Priority,
	}, ""
}

// CheckPullLimits returns the text of the 409 status that refuses r
// because it exceeds one of the consumer's per-request caps (max_batch,
// max_expires, max_bytes; 0 = no cap), or "" when r is within them. The
// caps are checked in nats-server's order and the texts are its own, e.g.
// "Exceeded MaxRequestExpires of 1m30s" (a time.Duration's String form).
// An expires or max_bytes the request does not set is never over a cap.
func CheckPullLimits(r PullRequest, maxBatch int, maxExpires time.Duration, maxBytes int) string {
	if maxBatch > 0 && r.Batch > maxBatch {
		return fmt.Sprintf("Exceeded MaxRequestBatch of %d", maxBatch)
	}
	if maxExpires > 0 && r.Expires != 0 && r.Expires > maxExpires {
		return fmt.Sprintf("Exceeded MaxRequestExpires of %v", maxExpires)
	}
	if maxBytes > 0 && r.MaxBytes > 0 && r.MaxBytes > maxBytes {
		return fmt.Sprintf("Exceeded MaxRequestMaxBytes of %d", maxBytes)
	}
	return ""
}

// CheckPriority returns the bad-request reason nats-server gives when r
// uses priority-group fields that a consumer without a priority policy
// does not accept (every Flotilla consumer), or "" when r is fine. A
// group name alone is accepted and ignored, as nats-server does. Call it
// after CheckPullLimits, which is nats-server's order.
func CheckPriority(r PullRequest) string {
	switch {
	case r.MinPending != 0 || r.MinAckPending != 0:
		return reasonNotOverflow
	case r.PinID != "":
		return reasonNotPinned
	case r.Priority < 0 || r.Priority > 9:
		return reasonBadPriority
	}
	return ""
}
