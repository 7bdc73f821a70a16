package broker

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// Stream command bodies (after the envelope's version and type bytes).
// Integers are big-endian; "time" is 8 bytes of Unix nanoseconds (the
// leader's clock when it proposed the command: apply never reads the
// local clock); "bytes" is a uvarint length and the bytes; "uvarint" is
// encoding/binary's. Bodies must be consumed exactly: trailing bytes are
// an error. Changing any layout needs a new command type (old entries
// stay in Raft logs and snapshots forever); golden-bytes tests pin them.
//
//	stream_create (2), stream_update (3): time | bytes config JSON
//	stream_delete (4):                    bytes name
//	stream_purge (5):                     time | bytes name | bytes filter | uvarint seq | uvarint keep
//	msg_delete (6):                       bytes name | uvarint seq
//	publish_batch (7):                    time | uvarint count | count × (bytes subject | bytes header | bytes data)
//	expire (8):                           time
//
// The stream configuration travels as JSON because it is rare, already
// has a JSON form, and JSON tolerates fields added later. A configuration
// that does not parse is a rejected command (10025), not a decode error:
// decoding only fails on broken framing.

// EncodeStreamCreate returns the command that creates a stream. Applied,
// its result is a *StreamInfo (DidCreate when it created it; an equal
// existing stream is returned as is) or an *APIError.
func EncodeStreamCreate(cfg StreamConfig, now time.Time) []byte {
	return encodeStreamConfigCmd(CmdStreamCreate, cfg, now)
}

// EncodeStreamUpdate returns the command that changes a stream's
// configuration. Result: *StreamInfo or *APIError.
func EncodeStreamUpdate(cfg StreamConfig, now time.Time) []byte {
	return encodeStreamConfigCmd(CmdStreamUpdate, cfg, now)
}

func encodeStreamConfigCmd(t CommandType, cfg StreamConfig, now time.Time) []byte {
	js, err := json.Marshal(cfg)
	if err != nil {
		// StreamConfig holds only strings, numbers, bools, a string map
		// and raw JSON that came from a decoder: it always marshals.
		panic(fmt.Sprintf("encode stream config: %v", err))
	}
	b := newCommand(t, 8+binary.MaxVarintLen64+len(js))
	b = appendTime(b, now)
	return appendBytes(b, js)
}

// EncodeStreamDelete returns the command that deletes a stream. Result:
// nil or *APIError.
func EncodeStreamDelete(name string) []byte {
	b := newCommand(CmdStreamDelete, binary.MaxVarintLen64+len(name))
	return appendString(b, name)
}

// EncodeStreamPurge returns the command that purges a stream. Result:
// the number of messages removed (uint64) or *APIError.
func EncodeStreamPurge(name string, req PurgeRequest, now time.Time) []byte {
	b := newCommand(CmdStreamPurge, 8+4*binary.MaxVarintLen64+len(name)+len(req.Subject))
	b = appendTime(b, now)
	b = appendString(b, name)
	b = appendString(b, req.Subject)
	b = binary.AppendUvarint(b, req.Seq)
	return binary.AppendUvarint(b, req.Keep)
}

// EncodeMsgDelete returns the command that deletes one message. Result:
// nil or *APIError.
func EncodeMsgDelete(name string, seq uint64) []byte {
	b := newCommand(CmdMsgDelete, 2*binary.MaxVarintLen64+len(name))
	b = appendString(b, name)
	return binary.AppendUvarint(b, seq)
}

// EncodePublishBatch returns the command that stores a batch of
// publishes. Result: []PubAck, one per message in order.
func EncodePublishBatch(now time.Time, msgs []PublishMsg) []byte {
	size := 8 + binary.MaxVarintLen64
	for i := range msgs {
		size += 3*binary.MaxVarintLen32 + len(msgs[i].Subject) + len(msgs[i].Header) + len(msgs[i].Data)
	}
	b := newCommand(CmdPublishBatch, size)
	b = appendTime(b, now)
	b = binary.AppendUvarint(b, uint64(len(msgs)))
	for i := range msgs {
		b = appendString(b, msgs[i].Subject)
		b = appendBytes(b, msgs[i].Header)
		b = appendBytes(b, msgs[i].Data)
	}
	return b
}

// EncodeExpire returns the command that ages out messages (max_age) and
// dedup ids (duplicate_window) in every stream as of now. Result: nil.
func EncodeExpire(now time.Time) []byte {
	return appendTime(newCommand(CmdExpire, 8), now)
}

func newCommand(t CommandType, bodySize int) []byte {
	b := make([]byte, 0, 2+bodySize)
	return append(b, commandVersion, byte(t))
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(unixNano(t)))
}

// unixNano maps the zero time to 0 (time.Time{}.UnixNano is not).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// timeOf is unixNano's inverse, in UTC.
func timeOf(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// Decoded command bodies. Byte slices alias the entry's data, which the
// FSM only uses during the apply.
type (
	streamConfigCmd struct {
		now    time.Time
		config []byte // JSON
	}
	streamDeleteCmd struct{ name string }
	streamPurgeCmd  struct {
		now  time.Time
		name string
		req  PurgeRequest
	}
	msgDeleteCmd struct {
		name string
		seq  uint64
	}
	publishBatchCmd struct {
		now  time.Time
		msgs []pubMsg
	}
	expireCmd struct{ now time.Time }
)

// pubMsg is one decoded publish; its slices alias the entry.
type pubMsg struct{ subject, header, data []byte }

// decodeStreamCommand decodes any stream command envelope into one of the
// *...Cmd types above. It never panics on garbage.
func decodeStreamCommand(b []byte) (any, error) {
	t, body, err := DecodeCommand(b)
	if err != nil {
		return nil, err
	}
	switch t {
	case CmdStreamCreate, CmdStreamUpdate:
		c, err := decodeStreamConfigCmd(body)
		return &c, err
	case CmdStreamDelete:
		c, err := decodeStreamDeleteCmd(body)
		return &c, err
	case CmdStreamPurge:
		c, err := decodeStreamPurgeCmd(body)
		return &c, err
	case CmdMsgDelete:
		c, err := decodeMsgDeleteCmd(body)
		return &c, err
	case CmdPublishBatch:
		c, err := decodePublishBatchCmd(body, nil)
		return &c, err
	case CmdExpire:
		c, err := decodeExpireCmd(body)
		return &c, err
	default:
		return nil, fmt.Errorf("%w: %s is not a stream command", ErrBadCommand, t)
	}
}

func decodeStreamConfigCmd(body []byte) (streamConfigCmd, error) {
	r := cmdReader{b: body}
	c := streamConfigCmd{now: r.time(), config: r.bytes()}
	return c, r.done("stream config")
}

func decodeStreamDeleteCmd(body []byte) (streamDeleteCmd, error) {
	r := cmdReader{b: body}
	c := streamDeleteCmd{name: string(r.bytes())}
	return c, r.done("stream delete")
}

func decodeStreamPurgeCmd(body []byte) (streamPurgeCmd, error) {
	r := cmdReader{b: body}
	c := streamPurgeCmd{now: r.time(), name: string(r.bytes())}
	c.req.Subject = string(r.bytes())
	c.req.Seq = r.uvarint()
	c.req.Keep = r.uvarint()
	return c, r.done("stream purge")
}

func decodeMsgDeleteCmd(body []byte) (msgDeleteCmd, error) {
	r := cmdReader{b: body}
	c := msgDeleteCmd{name: string(r.bytes())}
	c.seq = r.uvarint()
	return c, r.done("msg delete")
}

// decodePublishBatchCmd appends the messages to dst[:0], so the FSM can
// reuse one slice for every batch.
func decodePublishBatchCmd(body []byte, dst []pubMsg) (publishBatchCmd, error) {
	r := cmdReader{b: body}
	c := publishBatchCmd{now: r.time()}
	n := r.uvarint()
	// Each message takes at least 3 bytes, which bounds the count a
	// corrupt body can claim before anything is allocated.
	if r.err == nil && n > uint64(len(r.b))/3 {
		r.err = fmt.Errorf("%w: %d messages in %d bytes", ErrBadCommand, n, len(r.b))
	}
	if r.err == nil {
		dst = dst[:0]
		if cap(dst) < int(n) {
			dst = make([]pubMsg, 0, n)
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			dst = append(dst, pubMsg{subject: r.bytes(), header: r.bytes(), data: r.bytes()})
		}
		c.msgs = dst
	}
	return c, r.done("publish batch")
}

func decodeExpireCmd(body []byte) (expireCmd, error) {
	r := cmdReader{b: body}
	c := expireCmd{now: r.time()}
	return c, r.done("expire")
}

// cmdReader consumes a command body; the first error sticks and later reads
// return zero values, so decoders read every field and check once.
type cmdReader struct {
	b   []byte
	err error
}

func (r *cmdReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: short %s", ErrBadCommand, what)
	}
	r.b = nil
}

func (r *cmdReader) time() time.Time {
	if r.err != nil || len(r.b) < 8 {
		r.fail("time")
		return time.Time{}
	}
	ns := int64(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	return timeOf(ns)
}

func (r *cmdReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n != uvarintLen(v) {
		// Overlong encodings are refused too, so every body has exactly
		// one encoding.
		r.fail("uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns a length-prefixed field (nil when empty), aliasing the
// body.
func (r *cmdReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("field")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	if n == 0 {
		return nil
	}
	return v
}

func (r *cmdReader) done(what string) error {
	if r.err != nil {
		return fmt.Errorf("decode %s: %w", what, r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("decode %s: %w: %d trailing bytes", what, ErrBadCommand, len(r.b))
	}
	return nil
}

// uvarintLen is the length of v's shortest uvarint encoding.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
