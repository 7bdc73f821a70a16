package transport

import (
	"bytes"
	"fmt"
	"math"
)

// ParserConfig bounds what the parser accepts.
type ParserConfig struct {
	// MaxControlLine is the longest control line (op and arguments,
	// without the CRLF) accepted; zero or less means DefaultMaxControlLine.
	MaxControlLine int
	// MaxPayload is the largest PUB payload or HPUB total (header block
	// plus payload) accepted; zero or less means DefaultMaxPayload.
	MaxPayload int
}

// Handler receives parsed client ops. Byte slices are only valid during the
// call (they usually point into the caller's read buffer); a handler must
// copy what it keeps. A non-nil error from a handler stops Parse, which
// returns that error unchanged.
type Handler interface {
	// HandleConnect receives the raw JSON after "CONNECT ", with
	// surrounding whitespace trimmed.
	HandleConnect(arg []byte) error
	// HandlePub receives a PUB; reply is nil when absent and payload
	// excludes the trailing CRLF.
	HandlePub(subject, reply, payload []byte) error
	// HandleHPub receives an HPUB; header is the raw header block (#hdr
	// bytes, including its terminating empty line) and payload the rest.
	HandleHPub(subject, reply, header, payload []byte) error
	// HandleSub receives a SUB; queue is nil when absent.
	HandleSub(subject, queue, sid []byte) error
	// HandleUnsub receives an UNSUB; max is 0 when absent.
	HandleUnsub(sid []byte, max int64) error
	// HandlePing receives a PING.
	HandlePing() error
	// HandlePong receives a PONG.
	HandlePong() error
}

// ProtocolError describes a malformed client op. It unwraps to ErrProtocol.
type ProtocolError struct {
	// Op is the upper-case op name, e.g. "PUB".
	Op string
	// Reason says what was wrong, e.g. "wrong number of arguments".
	Reason string
}

// Error implements error.
func (e *ProtocolError) Error() string {
	return ErrProtocol.Error() + ": " + e.Op + ": " + e.Reason
}

// Unwrap returns ErrProtocol so errors.Is(err, ErrProtocol) holds.
func (e *ProtocolError) Unwrap() error { return ErrProtocol }

// opKind identifies a client op.
type opKind uint8

const (
	opUnknown opKind = iota
	opConnect
	opPub
	opHPub
	opSub
	opUnsub
	opPing
	opPong
)

// opNames holds the canonical (upper-case) spelling of every op; the
// parser compares case-insensitively against it.
var opNames = [...]string{
	opConnect: "CONNECT",
	opPub:     "PUB",
	opHPub:    "HPUB",
	opSub:     "SUB",
	opUnsub:   "UNSUB",
	opPing:    "PING",
	opPong:    "PONG",
}

// String returns the canonical op name.
func (k opKind) String() string {
	if k == opUnknown || int(k) >= len(opNames) {
		return "UNKNOWN"
	}
	return opNames[k]
}

const (
	// maxOpLen is the length of the longest op name (CONNECT).
	maxOpLen = 7
	// maxArgs is one more than the most fields any op takes (HPUB with a
	// reply has four), so splitArgs can tell "too many" apart.
	maxArgs = 5
	// retainPayload is the largest split-payload buffer kept between
	// messages. Bigger ones are dropped after use so that one large
	// message does not pin MaxPayload bytes per idle connection.
	retainPayload = 64 << 10
	// maxErrOpBytes bounds how much of an unknown op is quoted in errors.
	maxErrOpBytes = 16
)

// Parser is a pure byte state machine for the client-to-server half of
// the NATS protocol. It holds no server state and does no I/O: the
// connection's read loop feeds it whatever each Read returned and it
// calls a Handler for every complete op, in order.
//
// When an op lies wholly inside the buffer given to Parse, the handler
// gets subslices of that buffer and nothing is copied or allocated. Only
// an op split across Parse calls is copied into internal buffers, which
// are reused and bounded by MaxControlLine and MaxPayload+2.
//
// A Parser is not safe for concurrent use; each connection owns one.
type Parser struct {
	maxLine    int
	maxPayload int
	// lineLimit is how many bytes of an unterminated control line are kept.
	// It leaves room for the CR of the CRLF, and never drops below what
	// is needed to recognise an op name, so an unknown op is reported as
	// ErrUnknownOp whatever the split points are.
	lineLimit int

	// line holds a control line whose LF has not arrived yet.
	line []byte
	// inPayload is set while a PUB/HPUB payload spans Parse calls.
	inPayload bool
	msg       pendingMsg
}

// pendingMsg is a PUB or HPUB whose payload spans Parse calls. The
// subject and reply are copied because the buffer they came from is gone
// by the time the payload completes.
type pendingMsg struct {
	op       opKind
	args     []byte // subject followed by reply
	subjLen  int
	replyLen int
	hdr      int    // header block length (HPUB only)
	size     int    // payload length (#bytes or #total), excluding CRLF
	data     []byte // payload and trailing CRLF received so far
}

// NewParser returns a Parser enforcing cfg, with defaults for unset limits.
func NewParser(cfg ParserConfig) *Parser {
	p := &Parser{maxLine: cfg.MaxControlLine, maxPayload: cfg.MaxPayload}
	if p.maxLine <= 0 {
		p.maxLine = DefaultMaxControlLine
	}
	if p.maxPayload <= 0 {
		p.maxPayload = DefaultMaxPayload
	}
	// Keep size+2 (payload plus CRLF) from overflowing int.
	p.maxPayload = min(p.maxPayload, math.MaxInt-2)
	p.lineLimit = max(p.maxLine, maxOpLen+1) + 2
	return p
}

// Parse consumes buf, calling h for each op it completes. Ops may span
// calls: a trailing partial op is kept and finished by later calls. It
// returns the first error, either from the parser (see errors.go) or
// unchanged from the handler; the parser state is then unspecified and
// the connection should be closed.
func (p *Parser) Parse(buf []byte, h Handler) error {
	for len(buf) > 0 {
		var n int
		var err error
		switch {
		case p.inPayload:
			n, err = p.continuePayload(buf, h)
		case len(p.line) > 0:
			n, err = p.continueLine(buf, h)
		default:
			n, err = p.parseOp(buf, h)
		}
		if err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

// parseOp handles buf starting at an op boundary: the hot path. It
// returns how many bytes it consumed.
func (p *Parser) parseOp(buf []byte, h Handler) (int, error) {
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return len(buf), p.stashLine(buf)
	}
	n, err := p.processLine(buf[:i], buf[i+1:], h)
	return i + 1 + n, err
}

// continueLine completes a control line started by an earlier call.
func (p *Parser) continueLine(buf []byte, h Handler) (int, error) {
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return len(buf), p.stashLine(buf)
	}
	if err := p.stashLine(buf[:i]); err != nil {
		return 0, err
	}
	n, err := p.processLine(p.line, buf[i+1:], h)
	p.line = p.line[:0]
	return i + 1 + n, err
}

// stashLine appends part of an unterminated control line to p.line and
// reports, as early as the bytes allow, a line that cannot become valid.
// It never holds more than lineLimit bytes: anything past that is over
// MaxControlLine anyway, and checkPartialLine reports it.
func (p *Parser) stashLine(b []byte) error {
	take := min(len(b), p.lineLimit-len(p.line))
	if need := len(p.line) + take; need > cap(p.line) {
		grown := make([]byte, len(p.line), min(max(2*cap(p.line), need, 64), p.lineLimit))
		copy(grown, p.line)
		p.line = grown
	}
	p.line = append(p.line, b[:take]...)
	return p.checkPartialLine(p.line)
}

// checkPartialLine fails if no continuation of line can be a valid op, or
// if it already exceeds MaxControlLine. A trailing CR is not counted: it
// may be the first half of the CRLF. The op is judged before the length,
// like in processLine, so the error does not depend on split points.
func (p *Parser) checkPartialLine(line []byte) error {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	end := indexSpace(line)
	if end < 0 {
		if !isOpPrefix(line) {
			return unknownOpError(line)
		}
	} else if lookupOp(line[:end]) == opUnknown {
		return unknownOpError(line[:end])
	}
	if len(line) > p.maxLine {
		return p.maxLineError()
	}
	return nil
}

// processLine dispatches one complete control line (LF removed). rest is
// the input after the LF; PUB and HPUB take their payload from it and
// report how many bytes of it they consumed.
func (p *Parser) processLine(line, rest []byte, h Handler) (int, error) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	end := indexSpace(line)
	if end < 0 {
		end = len(line)
	}
	op := lookupOp(line[:end])
	if op == opUnknown {
		return 0, unknownOpError(line[:end])
	}
	if len(line) > p.maxLine {
		return 0, p.maxLineError()
	}
	args := line[end:]
	switch op {
	case opPub:
		return p.processPub(args, rest, h)
	case opHPub:
		return p.processHPub(args, rest, h)
	case opSub:
		return 0, processSub(args, h)
	case opUnsub:
		return 0, processUnsub(args, h)
	case opPing:
		if !isBlank(args) {
			return 0, protocolError(op, "unexpected arguments")
		}
		return 0, h.HandlePing()
	case opPong:
		if !isBlank(args) {
			return 0, protocolError(op, "unexpected arguments")
		}
		return 0, h.HandlePong()
	default: // opConnect
		arg := trimSpace(args)
		if len(arg) == 0 {
			return 0, protocolError(op, "missing arguments")
		}
		return 0, h.HandleConnect(arg)
	}
}

// processPub parses "<subject> [reply] <#bytes>" and hands the payload on.
func (p *Parser) processPub(args, rest []byte, h Handler) (int, error) {
	var f [maxArgs][]byte
	var subject, reply, size []byte
	switch splitArgs(args, &f) {
	case 2:
		subject, size = f[0], f[1]
	case 3:
		subject, reply, size = f[0], f[1], f[2]
	default:
		return 0, protocolError(opPub, "wrong number of arguments")
	}
	n, ok := parseUint(size)
	if !ok {
		return 0, protocolError(opPub, "invalid payload size")
	}
	if n > int64(p.maxPayload) {
		return 0, p.maxPayloadError(opPub, n)
	}
	return p.payload(opPub, subject, reply, 0, int(n), rest, h)
}

// processHPub parses "<subject> [reply] <#hdr> <#total>" and hands the
// header block and payload on.
func (p *Parser) processHPub(args, rest []byte, h Handler) (int, error) {
	var f [maxArgs][]byte
	var subject, reply, hdrArg, totalArg []byte
	switch splitArgs(args, &f) {
	case 3:
		subject, hdrArg, totalArg = f[0], f[1], f[2]
	case 4:
		subject, reply, hdrArg, totalArg = f[0], f[1], f[2], f[3]
	default:
		return 0, protocolError(opHPub, "wrong number of arguments")
	}
	hdr, ok := parseUint(hdrArg)
	if !ok {
		return 0, protocolError(opHPub, "invalid header size")
	}
	total, ok := parseUint(totalArg)
	if !ok {
		return 0, protocolError(opHPub, "invalid total size")
	}
	if hdr > total {
		return 0, protocolError(opHPub, "header size exceeds total size")
	}
	if total > int64(p.maxPayload) {
		return 0, p.maxPayloadError(opHPub, total)
	}
	return p.payload(opHPub, subject, reply, int(hdr), int(total), rest, h)
}

// payload delivers a PUB/HPUB straight from rest when all of it (and its
// CRLF) is there, which is the zero-copy path. Otherwise it copies what
// there is and waits for continuePayload to finish the message.
func (p *Parser) payload(op opKind, subject, reply []byte, hdr, size int, rest []byte, h Handler) (int, error) {
	if len(rest) >= size+2 {
		if rest[size] != '\r' || rest[size+1] != '\n' {
			return 0, protocolError(op, ReasonPayloadNoCRLF)
		}
		return size + 2, emit(op, subject, reply, hdr, rest[:size], h)
	}
	p.beginPayload(op, subject, reply, hdr, size)
	p.msg.data = append(p.msg.data, rest...)
	return len(rest), nil
}

// beginPayload records a message whose payload spans Parse calls.
func (p *Parser) beginPayload(op opKind, subject, reply []byte, hdr, size int) {
	m := &p.msg
	m.op, m.hdr, m.size = op, hdr, size
	m.subjLen, m.replyLen = len(subject), len(reply)
	m.args = reuse(m.args, len(subject)+len(reply))
	m.args = append(append(m.args, subject...), reply...)
	// Sized once to the declared length (at most MaxPayload+2), so the
	// appends in continuePayload never reallocate.
	m.data = reuse(m.data, size+2)
	p.inPayload = true
}

// continuePayload adds buf to a split payload and emits the message once
// the payload and its CRLF are complete.
func (p *Parser) continuePayload(buf []byte, h Handler) (int, error) {
	m := &p.msg
	take := min(m.size+2-len(m.data), len(buf))
	m.data = append(m.data, buf[:take]...)
	if len(m.data) < m.size+2 {
		return take, nil
	}
	p.inPayload = false
	if m.data[m.size] != '\r' || m.data[m.size+1] != '\n' {
		return take, protocolError(m.op, ReasonPayloadNoCRLF)
	}
	var reply []byte
	if m.replyLen > 0 {
		reply = m.args[m.subjLen:]
	}
	err := emit(m.op, m.args[:m.subjLen], reply, m.hdr, m.data[:m.size], h)
	if cap(m.data) > retainPayload {
		m.data = nil
	}
	return take, err
}

// emit calls the handler for a complete PUB or HPUB.
func emit(op opKind, subject, reply []byte, hdr int, data []byte, h Handler) error {
	if op == opHPub {
		return h.HandleHPub(subject, reply, data[:hdr], data[hdr:])
	}
	return h.HandlePub(subject, reply, data)
}

// processSub parses "<subject> [queue] <sid>".
func processSub(args []byte, h Handler) error {
	var f [maxArgs][]byte
	switch splitArgs(args, &f) {
	case 2:
		return h.HandleSub(f[0], nil, f[1])
	case 3:
		return h.HandleSub(f[0], f[1], f[2])
	default:
		return protocolError(opSub, "wrong number of arguments")
	}
}

// processUnsub parses "<sid> [max]".
func processUnsub(args []byte, h Handler) error {
	var f [maxArgs][]byte
	switch splitArgs(args, &f) {
	case 1:
		return h.HandleUnsub(f[0], 0)
	case 2:
		// A max that is not a number means "no max", as in nats-server:
		// the subscription ends at once rather than the connection.
		n, _ := parseUint(f[1])
		return h.HandleUnsub(f[0], n)
	default:
		return protocolError(opUnsub, "wrong number of arguments")
	}
}

// lookupOp maps an op name, in any letter case, to its kind.
func lookupOp(name []byte) opKind {
	switch len(name) {
	case 3:
		if equalFold(name, "PUB") {
			return opPub
		}
		if equalFold(name, "SUB") {
			return opSub
		}
	case 4:
		switch {
		case equalFold(name, "PING"):
			return opPing
		case equalFold(name, "PONG"):
			return opPong
		case equalFold(name, "HPUB"):
			return opHPub
		}
	case 5:
		if equalFold(name, "UNSUB") {
			return opUnsub
		}
	case 7:
		if equalFold(name, "CONNECT") {
			return opConnect
		}
	}
	return opUnknown
}

// isOpPrefix reports whether name could still grow into an op name.
func isOpPrefix(name []byte) bool {
	if len(name) > maxOpLen {
		return false
	}
	for _, op := range opNames[opConnect:] {
		if len(name) <= len(op) && equalFold(name, op[:len(name)]) {
			return true
		}
	}
	return false
}

// equalFold compares b with upper, an upper-case ASCII letter string of
// the same length, ignoring the letter case of b. Clearing bit 0x20 maps
// exactly the two cases of a letter onto its upper-case form, and no
// other byte onto a letter.
func equalFold(b []byte, upper string) bool {
	for i := range len(b) {
		if b[i]&^0x20 != upper[i] {
			return false
		}
	}
	return true
}

// splitArgs splits s into fields separated by runs of spaces and tabs,
// ignoring leading and trailing ones. It returns the number of fields, or
// maxArgs when there were at least that many (more than any op accepts).
// It writes into a caller-owned array so that it does not allocate.
//
// Clients separate fields with single spaces, so the common case jumps
// from space to space with bytes.IndexByte (vectorised) rather than
// testing every byte, which made splitting the dominant cost of a PUB.
// A line with a tab anywhere takes the byte-at-a-time path.
func splitArgs(s []byte, dst *[maxArgs][]byte) int {
	if bytes.IndexByte(s, '\t') >= 0 {
		return splitArgsSlow(s, dst)
	}
	n := 0
	for {
		for len(s) > 0 && s[0] == ' ' {
			s = s[1:]
		}
		if len(s) == 0 || n == maxArgs {
			return n
		}
		i := bytes.IndexByte(s, ' ')
		if i < 0 {
			dst[n] = s
			return n + 1
		}
		dst[n] = s[:i]
		n++
		s = s[i+1:]
	}
}

// splitArgsSlow is splitArgs for lines that may contain tabs.
func splitArgsSlow(s []byte, dst *[maxArgs][]byte) int {
	n := 0
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) || n == maxArgs {
			return n
		}
		start := i
		for i < len(s) && !isSpace(s[i]) {
			i++
		}
		dst[n] = s[start:i]
		n++
	}
}

// parseUint parses a non-empty string of ASCII digits without allocating.
// Values beyond int64 saturate at math.MaxInt64: such a size is simply
// over any payload limit, and such an UNSUB max never runs out.
func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}

// isSpace reports whether c separates fields.
func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// indexSpace returns the index of the first space or tab in b, or -1.
func indexSpace(b []byte) int {
	for i, c := range b {
		if isSpace(c) {
			return i
		}
	}
	return -1
}

// isBlank reports whether b holds only spaces and tabs.
func isBlank(b []byte) bool { return len(trimSpace(b)) == 0 }

// trimSpace strips leading and trailing spaces and tabs. Unlike
// bytes.TrimSpace it keeps other whitespace (a stray CR or NUL), which is
// then the argument's problem rather than silently dropped.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// reuse returns b emptied, reallocated only if its capacity is below n.
func reuse(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, 0, n)
	}
	return b[:0]
}

// ReasonPayloadNoCRLF is the ProtocolError reason for a payload that is not
// followed by CRLF (the one framing error nats-server answers with an -ERR
// rather than a silent close).
const ReasonPayloadNoCRLF = "payload not followed by CRLF"

// protocolError builds the *ProtocolError for op.
func protocolError(op opKind, reason string) error {
	return &ProtocolError{Op: op.String(), Reason: reason}
}

// unknownOpError wraps ErrUnknownOp with a bounded quote of the op.
func unknownOpError(name []byte) error {
	if len(name) > maxErrOpBytes {
		name = name[:maxErrOpBytes]
	}
	return fmt.Errorf("%w %q", ErrUnknownOp, name)
}

// maxLineError wraps ErrMaxControlLine with the limit.
func (p *Parser) maxLineError() error {
	return fmt.Errorf("%w (limit %d bytes)", ErrMaxControlLine, p.maxLine)
}

// maxPayloadError wraps ErrMaxPayload with the declared size and limit.
func (p *Parser) maxPayloadError(op opKind, size int64) error {
	return fmt.Errorf("%w: %s declares %d bytes, limit %d", ErrMaxPayload, op, size, p.maxPayload)
}
