package broker

import "strconv"

// Status texts of the JetStream status messages (reference §2.8, §2.12),
// spelled exactly as nats-server v2.15 sends them: nats.go matches several
// of them by text (a 409 "Consumer Deleted" ends a Consume, "Message Size
// Exceeds MaxBytes" ends a Fetch quietly, and so on).
const (
	StatusTextIdleHeartbeat   = "Idle Heartbeat"      // 100
	StatusTextFlowControl     = "FlowControl Request" // 100
	StatusTextBadRequest      = "Bad Request"         // 400, followed by " - <reason>"
	StatusTextNoMessages      = "No Messages"         // 404
	StatusTextRequestTimeout  = "Request Timeout"     // 408, with pending headers
	StatusTextRequestsPending = "Requests Pending"    // 408
	StatusTextInterestExpired = "Interest Expired"    // 408, with pending headers

	// 409 texts. MaxBytesExceeded, BatchCompleted and ServerShutdown carry
	// the pending headers, the others none.
	StatusTextMaxBytesExceeded = "Message Size Exceeds MaxBytes"
	StatusTextBatchCompleted   = "Batch Completed"
	StatusTextMaxWaiting       = "Exceeded MaxWaiting"
	StatusTextConsumerDeleted  = "Consumer Deleted"
	StatusTextLeadershipChange = "Leadership Change"
	StatusTextPushBased        = "Consumer is push based"
	StatusTextServerShutdown   = "Server Shutdown"
)

// Header keys carried by status messages.
const (
	hdrLastConsumer    = "Nats-Last-Consumer"
	hdrLastStream      = "Nats-Last-Stream"
	hdrConsumerStalled = "Nats-Consumer-Stalled"
	hdrPendingMsgs     = "Nats-Pending-Messages"
	hdrPendingBytes    = "Nats-Pending-Bytes"
	hdrSubject         = "Nats-Subject"
)

// AppendStatus appends a status header block to dst and returns the
// extended slice: "NATS/1.0 <code> <text>\r\n", one "<key>: <value>\r\n"
// line per pair in kv, then the empty line that ends the block. An empty
// text gives "NATS/1.0 <code>\r\n" (the no-responders form). A status
// message is sent as an HMSG whose payload is empty, so the block is the
// whole message.
//
// CR and LF in text and kv are written as spaces: a reason may echo
// client input, and a line break there would forge header lines. kv must
// hold key, value pairs; an odd length is a programming error and panics,
// as strings.NewReplacer does.
func AppendStatus(dst []byte, code int, text string, kv ...string) []byte {
	if len(kv)%2 != 0 {
		panic("broker: AppendStatus: odd number of key/value strings")
	}
	dst = appendStatusLine(dst, code, text)
	for i := 0; i < len(kv); i += 2 {
		dst = appendHeader(dst, kv[i], kv[i+1])
	}
	return append(dst, "\r\n"...)
}

// StatusIdleHeartbeat returns the 100 Idle Heartbeat block with the last
// delivered consumer and stream sequences. stalledFC, when not empty, is
// the flow-control subject a push consumer is waiting on; it is added as
// Nats-Consumer-Stalled so that the client answers there.
func StatusIdleHeartbeat(lastConsumerSeq, lastStreamSeq uint64, stalledFC string) []byte {
	b := appendStatusLine(nil, 100, StatusTextIdleHeartbeat)
	b = appendHeaderUint(b, hdrLastConsumer, lastConsumerSeq)
	b = appendHeaderUint(b, hdrLastStream, lastStreamSeq)
	if stalledFC != "" {
		b = appendHeader(b, hdrConsumerStalled, stalledFC)
	}
	return append(b, "\r\n"...)
}

// StatusFlowControl returns the 100 FlowControl Request block a push
// consumer sends (with a $JS.FC reply subject) to pace its client.
func StatusFlowControl() []byte {
	return AppendStatus(nil, 100, StatusTextFlowControl)
}

// StatusBadRequest returns "400 Bad Request - <reason>", the answer to a
// pull request that ParsePullRequest or CheckPriority refused.
func StatusBadRequest(reason string) []byte {
	return AppendStatus(nil, 400, StatusTextBadRequest+" - "+reason)
}

// StatusNoMessages returns the 404 No Messages block that ends a no_wait
// pull request without expiry when nothing is available.
func StatusNoMessages() []byte {
	return AppendStatus(nil, 404, StatusTextNoMessages)
}

// StatusRequestTimeout returns the 408 Request Timeout block of an
// expired pull request, with the part of its batch and byte budget that
// was not used.
func StatusRequestTimeout(pendingMsgs, pendingBytes int) []byte {
	return appendPendingStatus(nil, 408, StatusTextRequestTimeout, pendingMsgs, pendingBytes)
}

// StatusRequestsPending returns the 408 Requests Pending block: a no_wait
// request while earlier requests already claim every pending message.
// nats-server sends it without pending headers.
func StatusRequestsPending() []byte {
	return AppendStatus(nil, 408, StatusTextRequestsPending)
}

// StatusConflict returns "409 <text>", with the pending headers when
// withPending is set (the StatusText* constants say which 409s have them).
func StatusConflict(text string, pendingMsgs, pendingBytes int, withPending bool) []byte {
	if !withPending {
		return AppendStatus(nil, 409, text)
	}
	return appendPendingStatus(nil, 409, text, pendingMsgs, pendingBytes)
}

// StatusNoResponders returns the bare "NATS/1.0 503" block that tells a
// requester nobody listens on the subject it published to.
func StatusNoResponders() []byte {
	return AppendStatus(nil, 503, "")
}

// StatusNoRespondersFor is StatusNoResponders with the Nats-Subject header
// naming the request subject, as nats-server 2.15 sends it.
func StatusNoRespondersFor(subject string) []byte {
	return AppendStatus(nil, 503, "", hdrSubject, subject)
}

// appendPendingStatus appends a status block with the Nats-Pending-Messages
// and Nats-Pending-Bytes headers.
func appendPendingStatus(dst []byte, code int, text string, pendingMsgs, pendingBytes int) []byte {
	dst = appendStatusLine(dst, code, text)
	dst = appendHeaderInt(dst, hdrPendingMsgs, int64(pendingMsgs))
	dst = appendHeaderInt(dst, hdrPendingBytes, int64(pendingBytes))
	return append(dst, "\r\n"...)
}

func appendStatusLine(dst []byte, code int, text string) []byte {
	dst = append(dst, "NATS/1.0 "...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	if text != "" {
		dst = append(dst, ' ')
		dst = appendLineSafe(dst, text)
	}
	return append(dst, "\r\n"...)
}

func appendHeader(dst []byte, key, value string) []byte {
	dst = appendLineSafe(dst, key)
	dst = append(dst, ": "...)
	dst = appendLineSafe(dst, value)
	return append(dst, "\r\n"...)
}

func appendHeaderInt(dst []byte, key string, v int64) []byte {
	dst = append(dst, key...)
	dst = append(dst, ": "...)
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, "\r\n"...)
}

func appendHeaderUint(dst []byte, key string, v uint64) []byte {
	dst = append(dst, key...)
	dst = append(dst, ": "...)
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, "\r\n"...)
}

// appendLineSafe appends s with CR and LF replaced by spaces, so that s
// stays inside one header line.
func appendLineSafe(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}
