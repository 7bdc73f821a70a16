package transport

import (
	"errors"

	"github.com/flotilla/flotilla/metrics"
)

// The -ERR texts stock clients recognise (reference §1.8). nats.go keeps a
// connection only after the permission and subscription-limit texts; any
// other text closes it for good, so we never invent texts for recoverable
// situations.
const (
	errTextUnknownOp             = "Unknown Protocol Operation"
	errTextMaxControlLine        = "maximum control line exceeded"
	errTextMaxPayload            = "Maximum Payload Violation"
	errTextMaxConnections        = "maximum connections exceeded"
	errTextMaxSubscriptions      = "maximum subscriptions exceeded"
	errTextInvalidSubject        = "Invalid Subject"
	errTextInvalidPublishSubject = "Invalid Publish Subject"
	errTextAuthorization         = "Authorization Violation"
	errTextAuthTimeout           = "Authentication Timeout"
	errTextStale                 = "Stale Connection"
	errTextNoRespondersHeaders   = "no responders requires headers support"
)

var (
	// errAuthorization ends a connection whose credentials were wrong or
	// that sent another op before CONNECT while authentication is on.
	errAuthorization = errors.New("authorization violation")
	// errClosed stops the read loop of a connection closed elsewhere.
	errClosed = errors.New("connection closed")
	// errNoRespondersHeaders rejects a CONNECT asking for no-responders
	// statuses without header support (they are header-only messages).
	errNoRespondersHeaders = errors.New("no responders requires headers")
)

// classify maps an error that ends a connection to its -ERR text (empty
// for none), its metrics reason and its close reason. This is the one table
// from domain and parser errors to wire texts.
func classify(err error) (text, reason string, why closeReason) {
	switch {
	case errors.Is(err, ErrMaxPayload):
		return errTextMaxPayload, metrics.ReasonLimit, closeProtocol
	case errors.Is(err, ErrMaxControlLine):
		return errTextMaxControlLine, metrics.ReasonLimit, closeProtocol
	case errors.Is(err, errAuthorization):
		return errTextAuthorization, metrics.ReasonAuth, closeAuth
	case errors.Is(err, ErrUnknownOp):
		return errTextUnknownOp, metrics.ReasonParse, closeProtocol
	case errors.Is(err, errNoRespondersHeaders):
		return errTextNoRespondersHeaders, metrics.ReasonParse, closeProtocol
	}
	var pe *ProtocolError
	if errors.As(err, &pe) && pe.Reason != ReasonPayloadNoCRLF && pe.Op != "UNSUB" && pe.Op != "PING" && pe.Op != "PONG" {
		// Malformed PUB/HPUB/SUB/CONNECT arguments: nats-server closes
		// without an -ERR, and so do we.
		return "", metrics.ReasonParse, closeProtocol
	}
	return errTextUnknownOp, metrics.ReasonParse, closeProtocol
}

// reasonFor maps a close reason to its metrics reason.
func reasonFor(why closeReason) string {
	switch why {
	case closeAuth, closeAuthTimeout:
		return metrics.ReasonAuth
	case closeStale:
		return metrics.ReasonStale
	case closeWriteError, closeSlowConsumer:
		return metrics.ReasonWrite
	default:
		return metrics.ReasonParse
	}
}
