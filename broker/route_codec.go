package broker

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/flotilla/flotilla/cluster"
)

// Routing frames travel between nodes over cluster's node-to-node links
// (cluster.Node.Send). Their bodies are encoded and decoded only in this
// file and pinned by golden-bytes tests (route_codec_test.go), because nodes
// of different builds must understand each other during a rolling upgrade.
//
// Every body starts with a version byte. A change of layout gets a new
// version; a decoder rejects versions it does not know (the frame is dropped,
// which core messages tolerate: they are at-most-once).
//
// Strings and byte fields are a uvarint length followed by the bytes.
//
// Interest frame (kindRouteInterest):
//
//	version   u8  (routeCodecVersion)
//	flags     u8  (interestReset | interestEnd | interestWant; other bits invalid)
//	ops       until the end of the body, each:
//	  subject uvarint len + bytes (non-empty)
//	  queue   uvarint len + bytes (empty for plain interest)
//	  weight  uvarint             (0 = interest removed; for a queue, the
//	                               number of members on the sending node)
//
// Message frame (kindRouteMsg):
//
//	version   u8  (routeCodecVersion, or routeTargetVersion followed by
//	target    uvarint len + bytes (non-empty): Message.Target)
//	subject   uvarint len + bytes (non-empty)
//	reply     uvarint len + bytes
//	header    uvarint len + bytes (0 = no header)
//	payload   uvarint len + bytes
//	queues    until the end of the body: uvarint len + bytes (non-empty),
//	          the queue groups the receiving node must serve with one member
//
// The queue names come last so that the sender can encode a message once and
// append a different queue list for each peer.
const (
	// kindRouteInterest carries interest changes or a full interest sync.
	kindRouteInterest = cluster.FirstUserKind
	// kindRouteMsg carries one published message.
	kindRouteMsg = cluster.FirstUserKind + 1

	routeCodecVersion byte = 1
	// routeTargetVersion marks a message frame that carries a delivery
	// target (Message.Target) before its subject.
	routeTargetVersion byte = 2
)

// Interest frame flags.
const (
	// interestReset starts a full sync: the receiver forgets everything it
	// holds about the sender's interest once the sync ends.
	interestReset byte = 1 << 0
	// interestEnd ends a full sync; the ops received since interestReset are
	// now the sender's whole interest.
	interestEnd byte = 1 << 1
	// interestWant asks the receiver to send back a full sync of its own
	// interest (the sender lost, or never had, the receiver's state).
	interestWant byte = 1 << 2

	interestFlagsMask = interestReset | interestEnd | interestWant
)

// maxRemoteWeight caps a queue weight read from the network so that sums of
// weights across a few nodes can never overflow.
const maxRemoteWeight = 1 << 24

// errBadRouteFrame means a routing frame body is malformed.
var errBadRouteFrame = errors.New("bad route frame")

// interestOp is one decoded interest change. Subject and Queue alias the
// frame body: they are valid only while the body is.
type interestOp struct {
	Subject []byte
	Queue   []byte
	Weight  uint32
}

// interestFrame is a decoded interest frame.
type interestFrame struct {
	Flags byte
	Ops   []interestOp
}

// routeMsg is a decoded message frame. Its slices alias the frame body.
type routeMsg struct {
	Target  []byte // nil unless the frame has a delivery target
	Subject []byte
	Reply   []byte
	Header  []byte // nil when the message has no header
	Payload []byte
	// queues is the encoded queue list (validated by decodeRouteMsg);
	// iterate it with nextQueue.
	queues []byte
}

// appendInterestHeader starts an interest frame.
func appendInterestHeader(dst []byte, flags byte) []byte {
	return append(dst, routeCodecVersion, flags)
}

// appendInterestOp appends one op to an interest frame.
func appendInterestOp(dst []byte, subject, queue string, weight uint32) []byte {
	dst = appendString(dst, subject)
	dst = appendString(dst, queue)
	return binary.AppendUvarint(dst, uint64(weight))
}

// decodeInterest decodes an interest frame. It never panics, whatever the
// input.
func decodeInterest(body []byte) (interestFrame, error) {
	var f interestFrame
	if len(body) < 2 {
		return f, fmt.Errorf("%w: interest frame of %d bytes", errBadRouteFrame, len(body))
	}
	if body[0] != routeCodecVersion {
		return f, fmt.Errorf("%w: version %d", errBadRouteFrame, body[0])
	}
	f.Flags = body[1]
	if f.Flags&^interestFlagsMask != 0 {
		return f, fmt.Errorf("%w: interest flags %#x", errBadRouteFrame, f.Flags)
	}
	rest := body[2:]
	// Each op takes at least 3 bytes, which bounds the allocation whatever
	// a hostile body claims.
	f.Ops = make([]interestOp, 0, len(rest)/3)
	for len(rest) > 0 {
		var op interestOp
		var w uint64
		var err error
		if op.Subject, rest, err = readBytes(rest); err != nil {
			return f, fmt.Errorf("interest subject: %w", err)
		}
		if len(op.Subject) == 0 {
			return f, fmt.Errorf("%w: empty interest subject", errBadRouteFrame)
		}
		if op.Queue, rest, err = readBytes(rest); err != nil {
			return f, fmt.Errorf("interest queue: %w", err)
		}
		if w, rest, err = readUvarint(rest); err != nil {
			return f, fmt.Errorf("interest weight: %w", err)
		}
		op.Weight = uint32(min(w, maxRemoteWeight))
		f.Ops = append(f.Ops, op)
	}
	return f, nil
}

// appendRouteMsg appends a message frame without its queue list; append the
// queue names with appendRouteQueue.
func appendRouteMsg(dst []byte, m *Message) []byte {
	if m.Target != nil {
		dst = append(dst, routeTargetVersion)
		dst = appendBytes(dst, m.Target)
	} else {
		dst = append(dst, routeCodecVersion)
	}
	dst = appendBytes(dst, m.Subject)
	dst = appendBytes(dst, m.Reply)
	dst = appendBytes(dst, m.Header)
	return appendBytes(dst, m.Payload)
}

// appendRouteQueue appends one queue group name to a message frame.
func appendRouteQueue(dst []byte, name string) []byte {
	return appendString(dst, name)
}

// decodeRouteMsg decodes a message frame into rm without allocating. It
// never panics, whatever the input.
func decodeRouteMsg(body []byte, rm *routeMsg) error {
	*rm = routeMsg{}
	if len(body) < 1 {
		return fmt.Errorf("%w: empty message frame", errBadRouteFrame)
	}
	rest := body[1:]
	var err error
	switch body[0] {
	case routeCodecVersion:
	case routeTargetVersion:
		if rm.Target, rest, err = readBytes(rest); err != nil {
			return fmt.Errorf("message target: %w", err)
		}
		if len(rm.Target) == 0 {
			return fmt.Errorf("%w: empty message target", errBadRouteFrame)
		}
	default:
		return fmt.Errorf("%w: version %d", errBadRouteFrame, body[0])
	}
	if rm.Subject, rest, err = readBytes(rest); err != nil {
		return fmt.Errorf("message subject: %w", err)
	}
	if len(rm.Subject) == 0 {
		return fmt.Errorf("%w: empty message subject", errBadRouteFrame)
	}
	if rm.Reply, rest, err = readBytes(rest); err != nil {
		return fmt.Errorf("message reply: %w", err)
	}
	if rm.Header, rest, err = readBytes(rest); err != nil {
		return fmt.Errorf("message header: %w", err)
	}
	if len(rm.Header) == 0 {
		rm.Header = nil
	}
	if rm.Payload, rest, err = readBytes(rest); err != nil {
		return fmt.Errorf("message payload: %w", err)
	}
	// Validate the queue list now so that nextQueue cannot fail later.
	rm.queues = rest
	for len(rest) > 0 {
		var name []byte
		if name, rest, err = readBytes(rest); err != nil {
			return fmt.Errorf("message queue: %w", err)
		}
		if len(name) == 0 {
			return fmt.Errorf("%w: empty queue name", errBadRouteFrame)
		}
	}
	return nil
}

// nextQueue returns the next queue name of the list and the rest of it;
// ok is false at the end. The list was validated by decodeRouteMsg.
func nextQueue(list []byte) (name, rest []byte, ok bool) {
	if len(list) == 0 {
		return nil, nil, false
	}
	name, rest, err := readBytes(list)
	return name, rest, err == nil
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// readUvarint reads one uvarint, rejecting truncation and overflow.
func readUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: bad uvarint", errBadRouteFrame)
	}
	return v, b[n:], nil
}

// readBytes reads one length-prefixed field. The returned slice aliases b
// and has its capacity clipped, so appending to it can never overwrite the
// rest of the frame.
func readBytes(b []byte) (field, rest []byte, err error) {
	n, rest, err := readUvarint(b)
	if err != nil {
		return nil, nil, err
	}
	if n > uint64(len(rest)) {
		return nil, nil, fmt.Errorf("%w: field of %d bytes, %d left", errBadRouteFrame, n, len(rest))
	}
	return rest[:n:n], rest[n:], nil
}
