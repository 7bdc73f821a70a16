package broker

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Consumer command bodies, in the conventions of stream_codec.go (time = 8
// bytes of Unix ns from the leader's clock; bytes = uvarint length + bytes;
// exact consumption; golden-bytes tests pin the layouts).
//
//	consumer_create (9):  time | bytes stream | bytes name | bytes action | bytes config JSON
//	consumer_delete (10): bytes stream | bytes name
//	consumer_ops (11):    uvarint count | count × op
//	  op: byte kind | bytes stream | bytes name | uvarint generation |
//	      uvarint stream seq | uvarint consumer seq | uvarint deliveries | time
//
// An op names its consumer by stream, name and generation (the Raft index
// of the create that made it), so ops still in flight for a consumer that
// was deleted and re-created under the same name are ignored instead of
// being applied to the new one.

// consumerOpKind is what one consumer op records.
type consumerOpKind byte

const (
	// opDeliver records a delivery: the delivered position advances and,
	// unless the consumer acks nothing, the message becomes pending with
	// its delivery count and time.
	opDeliver consumerOpKind = 1
	// opAck removes a pending message (acked, terminated, or gone from
	// the stream) and lets retention drop it from a workqueue stream. A
	// consSeq names the delivery whose ack (one with a reply) settled it,
	// recorded for a retried double ack; 0 records nothing.
	opAck consumerOpKind = 2
	// opSkip advances the delivered position without a pending entry
	// (messages the consumer passed over, e.g. with ack none).
	opSkip consumerOpKind = 3
	// opDrop removes a pending message without acknowledging it for
	// retention: it reached max_deliver, or it is gone from the stream.
	opDrop consumerOpKind = 4
)

// consumerOp is one change of a consumer's replicated state.
type consumerOp struct {
	kind       consumerOpKind
	stream     string
	name       string
	gen        uint64
	streamSeq  uint64
	consSeq    uint64
	deliveries uint64
	ts         int64 // Unix ns of the delivery
}

type consumerCreateCmd struct {
	now          time.Time
	stream, name string
	action       ConsumerAction
	config       []byte // JSON
}

type consumerDeleteCmd struct{ stream, name string }

// EncodeConsumerCreate returns the command that creates or updates a
// consumer. Applied, its result is a *consumerRecord or an *APIError.
func EncodeConsumerCreate(now time.Time, stream, name string, action ConsumerAction, cfgJSON []byte) []byte {
	b := newCommand(CmdConsumerCreate, 8+4*binary.MaxVarintLen64+len(stream)+len(name)+len(action)+len(cfgJSON))
	b = appendTime(b, now)
	b = appendString(b, stream)
	b = appendString(b, name)
	b = appendString(b, string(action))
	return appendBytes(b, cfgJSON)
}

// EncodeConsumerDelete returns the command that deletes a consumer.
// Result: nil or *APIError.
func EncodeConsumerDelete(stream, name string) []byte {
	b := newCommand(CmdConsumerDelete, 2*binary.MaxVarintLen64+len(stream)+len(name))
	b = appendString(b, stream)
	return appendString(b, name)
}

// encodeConsumerOps returns the command carrying a batch of consumer ops.
// Result: nil.
func encodeConsumerOps(ops []consumerOp) []byte {
	size := binary.MaxVarintLen64
	for i := range ops {
		size += 1 + 8 + 6*binary.MaxVarintLen64 + len(ops[i].stream) + len(ops[i].name)
	}
	b := newCommand(CmdConsumerOps, size)
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for i := range ops {
		op := &ops[i]
		b = append(b, byte(op.kind))
		b = appendString(b, op.stream)
		b = appendString(b, op.name)
		b = binary.AppendUvarint(b, op.gen)
		b = binary.AppendUvarint(b, op.streamSeq)
		b = binary.AppendUvarint(b, op.consSeq)
		b = binary.AppendUvarint(b, op.deliveries)
		b = binary.BigEndian.AppendUint64(b, uint64(op.ts))
	}
	return b
}

func decodeConsumerCreateCmd(body []byte) (consumerCreateCmd, error) {
	r := cmdReader{b: body}
	c := consumerCreateCmd{now: r.time(), stream: string(r.bytes()), name: string(r.bytes())}
	c.action = ConsumerAction(r.bytes())
	c.config = r.bytes()
	return c, r.done("consumer_create")
}

func decodeConsumerDeleteCmd(body []byte) (consumerDeleteCmd, error) {
	r := cmdReader{b: body}
	c := consumerDeleteCmd{stream: string(r.bytes()), name: string(r.bytes())}
	return c, r.done("consumer_delete")
}

// decodeConsumerOps decodes an ops body into dst (reused).
func decodeConsumerOps(body []byte, dst []consumerOp) ([]consumerOp, error) {
	r := cmdReader{b: body}
	n := r.uvarint()
	if n > uint64(len(r.b)) { // every op takes more than one byte
		r.fail("op count")
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		if len(r.b) == 0 {
			r.fail("op kind")
			break
		}
		op := consumerOp{kind: consumerOpKind(r.b[0])}
		r.b = r.b[1:]
		if op.kind < opDeliver || op.kind > opDrop {
			r.fail(fmt.Sprintf("op kind %d", op.kind))
			break
		}
		op.stream, op.name = string(r.bytes()), string(r.bytes())
		op.gen, op.streamSeq, op.consSeq, op.deliveries = r.uvarint(), r.uvarint(), r.uvarint(), r.uvarint()
		op.ts = unixNano(r.time())
		dst = append(dst, op)
	}
	return dst, r.done("consumer_ops")
}
