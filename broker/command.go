package broker

import (
	"errors"
	"fmt"
)

// The Raft command envelope: one version byte, one type byte, then a
// compact binary body. Encoding and decoding live in this one file and are
// pinned by golden-bytes tests, because every replica must decode every
// entry ever written.
const commandVersion byte = 1

// CommandType identifies a command. Types with the high bit set are
// optional: a replica that does not know one skips it instead of stopping,
// which lets newer nodes add such commands during a rolling upgrade.
type CommandType byte

const (
	// CmdNoop changes nothing but the applied index. The leader proposes it
	// to learn that its state machine has caught up (readiness).
	CmdNoop CommandType = 1
	// CmdStreamCreate creates a stream (stream_codec.go has the bodies of
	// this and the following stream commands).
	CmdStreamCreate CommandType = 2
	// CmdStreamUpdate changes a stream's configuration.
	CmdStreamUpdate CommandType = 3
	// CmdStreamDelete deletes a stream and its messages.
	CmdStreamDelete CommandType = 4
	// CmdStreamPurge removes messages from a stream.
	CmdStreamPurge CommandType = 5
	// CmdMsgDelete removes one message from a stream.
	CmdMsgDelete CommandType = 6
	// CmdPublishBatch stores a batch of published messages.
	CmdPublishBatch CommandType = 7
	// CmdExpire removes messages and dedup ids that aged out.
	CmdExpire CommandType = 8
	// CmdConsumerCreate creates or updates a consumer (consumer_codec.go
	// has the bodies of this and the following consumer commands).
	CmdConsumerCreate CommandType = 9
	// CmdConsumerDelete deletes a consumer and its state.
	CmdConsumerDelete CommandType = 10
	// CmdConsumerOps records a batch of deliveries and acks decided by
	// the leader's delivery engine.
	CmdConsumerOps CommandType = 11

	cmdOptionalBit CommandType = 0x80
)

func (t CommandType) String() string {
	switch t {
	case CmdNoop:
		return "noop"
	case CmdStreamCreate:
		return "stream_create"
	case CmdStreamUpdate:
		return "stream_update"
	case CmdStreamDelete:
		return "stream_delete"
	case CmdStreamPurge:
		return "stream_purge"
	case CmdMsgDelete:
		return "msg_delete"
	case CmdPublishBatch:
		return "publish_batch"
	case CmdExpire:
		return "expire"
	case CmdConsumerCreate:
		return "consumer_create"
	case CmdConsumerDelete:
		return "consumer_delete"
	case CmdConsumerOps:
		return "consumer_ops"
	default:
		return fmt.Sprintf("unknown(%d)", byte(t))
	}
}

// ErrBadCommand means bytes are not a valid command envelope.
var ErrBadCommand = errors.New("bad command")

// EncodeCommand returns the envelope for a command type and body.
func EncodeCommand(t CommandType, body []byte) []byte {
	b := make([]byte, 0, 2+len(body))
	b = append(b, commandVersion, byte(t))
	return append(b, body...)
}

// DecodeCommand splits an envelope. It never panics on garbage; the FSM
// decides what to do with an error (entries from the Raft log must decode).
func DecodeCommand(b []byte) (CommandType, []byte, error) {
	if len(b) < 2 {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrBadCommand, len(b))
	}
	if b[0] != commandVersion {
		return 0, nil, fmt.Errorf("%w: version %d", ErrBadCommand, b[0])
	}
	return CommandType(b[1]), b[2:], nil
}
