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

	cmdOptionalBit CommandType = 0x80
)

func (t CommandType) String() string {
	switch t {
	case CmdNoop:
		return "noop"
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
