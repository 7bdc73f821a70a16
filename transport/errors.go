package transport

import "errors"

// Parser sentinels. The parser wraps them with context (the offending op,
// the limit that was hit), so callers must match with errors.Is, never ==.
// After any of them the parser state is unspecified and the connection
// must be closed.
var (
	// ErrProtocol means a client op was malformed: a wrong argument count,
	// a non-numeric size, #hdr > #total, or a payload not followed by CRLF.
	// The parser returns it wrapped in a *ProtocolError naming the op and
	// the reason.
	ErrProtocol = errors.New("protocol error")

	// ErrUnknownOp means a control line did not start with one of CONNECT,
	// PUB, HPUB, SUB, UNSUB, PING or PONG (in any letter case). The parser
	// reports it as soon as the bytes seen so far cannot begin a known op,
	// without waiting for the line end.
	ErrUnknownOp = errors.New("unknown protocol operation")

	// ErrMaxControlLine means a control line (op and arguments, without
	// the CRLF) grew past ParserConfig.MaxControlLine. It is reported as
	// soon as the limit is passed, even before the line end arrives, so a
	// peer cannot make the parser buffer without bound.
	ErrMaxControlLine = errors.New("maximum control line exceeded")

	// ErrMaxPayload means a PUB's #bytes or an HPUB's #total exceeded
	// ParserConfig.MaxPayload. It is reported right after the control line,
	// before any payload byte is read.
	ErrMaxPayload = errors.New("maximum payload exceeded")
)

// Config sentinels, the causes inside *ConfigError.
var (
	// ErrInvalidAddr means an address is not host:port.
	ErrInvalidAddr = errors.New("not a host:port address")
	// ErrOutOfRange means a numeric setting is outside its allowed range.
	ErrOutOfRange = errors.New("out of range")
	// ErrAuthIncomplete means only one of user and password was set.
	ErrAuthIncomplete = errors.New("user and password must be set together")
	// ErrAuthConflict means both a token and a user were configured.
	ErrAuthConflict = errors.New("auth token and user/password are mutually exclusive")
)
