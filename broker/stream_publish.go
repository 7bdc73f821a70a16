package broker

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/cluster"
)

// pendingPub is one captured client publish waiting to be stored.
type pendingPub struct {
	reply string
	msg   PublishMsg
}

// Capture implements Capturer: a client publish that a stream captures is
// copied and queued for the leader. It runs on the publisher's read
// goroutine; when the queue is full it waits, which paces the publisher
// (TCP backpressure) instead of dropping anything.
func (js *JetStream) Capture(m *Message) bool {
	if _, ok := js.fsm.StreamForSubject(m.Subject); !ok {
		return false
	}
	// Two copies, not four: one string holds the reply and the subject,
	// one buffer the header and the data.
	names := string(m.Reply) + string(m.Subject)
	p := pendingPub{reply: names[:len(m.Reply)], msg: PublishMsg{Subject: names[len(m.Reply):]}}
	if h, n := len(m.Header), len(m.Header)+len(m.Payload); n > 0 {
		buf := make([]byte, n)
		copy(buf, m.Header)
		copy(buf[h:], m.Payload)
		if h > 0 {
			p.msg.Header = buf[:h:h]
		}
		if n > h {
			p.msg.Data = buf[h:]
		}
	}
	js.pubQ.put(p)
	return true
}

// pubWorker sends queued publishes to the leader in batches: everything
// queued while the previous batch was being handed over goes in the next
// one, so a burst of async publishes becomes a few Raft entries, not one
// per message.
//
// On the leader, batches are pipelined: each is proposed as soon as Raft
// takes it, up to pubInflight of them wait for their commit at once, and
// pubAcker answers them in order. One client's burst then costs one Raft
// round after its last message instead of one round per batch (a round is
// the leader's log sync, then a follower's). Proposals from this one
// goroutine are committed in the order they were made, which keeps each
// publisher's messages in order. Elsewhere one batch at a time is
// forwarded, and only once the pipelined ones are answered: forwarded
// requests run concurrently on the leader, so two in flight could swap.
func (js *JetStream) pubWorker() {
	defer js.wg.Done()
	proposed := make(chan proposedBatch, pubInflight)
	var inflight sync.WaitGroup
	go js.pubAcker(proposed)
	defer func() {
		close(proposed)
		inflight.Wait() // pubAcker answers what is in flight, then ends
	}()
	for {
		batch := js.pubQ.take(pubBatchMsgs, pubBatchBytes)
		if batch == nil {
			return // stopped
		}
		if unsafeEarlyAck == nil && js.raft.IsLeader() {
			inflight.Add(1)
			proposed <- proposedBatch{batch: batch, p: js.proposeBatch(batch), done: inflight.Done}
			continue
		}
		inflight.Wait()
		js.storeBatch(batch)
	}
}

// pubInflight bounds the batches proposed by one node's pubWorker and not
// yet applied (each is at most pubBatchMsgs messages or pubBatchBytes).
const pubInflight = 8

// proposedBatch is a publish batch proposed to Raft on this node.
type proposedBatch struct {
	batch []pendingPub
	p     *cluster.Proposal
	done  func()
}

// proposeBatch proposes a batch on this node (the leader) as one entry.
func (js *JetStream) proposeBatch(batch []pendingPub) *cluster.Proposal {
	ctx, cancel := context.WithTimeout(context.Background(), pubTimeout)
	defer cancel()
	return js.raft.Propose(ctx, EncodePublishBatch(time.Now(), batchMsgs(batch)))
}

// pubAcker answers the pipelined batches in the order they were proposed.
// A batch Raft refused because this node had stopped leading
// (ErrNotLeader: certainly not stored) is forwarded to the new leader; the
// batches proposed after it were refused as well, since the node cannot
// have won another election in the microseconds between two proposals. A
// batch whose outcome is unknown (leadership lost while in flight) is not
// answered: the client times out and retries, and its Nats-Msg-Id makes
// the retry safe.
func (js *JetStream) pubAcker(proposed <-chan proposedBatch) {
	for pb := range proposed {
		res, err := pb.p.Wait()
		switch {
		case errors.Is(err, cluster.ErrNotLeader):
			js.storeBatch(pb.batch)
		case err != nil:
			js.log.Warn("stream publish batch not stored", zap.Int("messages", len(pb.batch)), zap.Error(err))
		default:
			js.ackBatch(pb.batch, res)
		}
		pb.done()
	}
}

// ackBatch answers each publish of a batch the leader applied (res: its
// []PubAck) that has a reply subject.
func (js *JetStream) ackBatch(batch []pendingPub, res any) {
	acks, ok := res.([]PubAck)
	if !ok || len(acks) != len(batch) {
		js.log.Error("bad stream publish result", zap.Int("messages", len(batch)), zap.String("result", fmt.Sprintf("%T", res)))
		return
	}
	var buf []byte
	r := replier{js: js}
	for i := range batch {
		p := &batch[i]
		if p.reply == "" {
			continue
		}
		b, err := appendPubAck(buf[:0], &acks[i])
		if err != nil {
			js.log.Error("encode pub ack", zap.Error(err))
			continue
		}
		buf = b
		r.respond(p.reply, b)
	}
}

// batchMsgs returns a batch's messages.
func batchMsgs(batch []pendingPub) []PublishMsg {
	msgs := make([]PublishMsg, len(batch))
	for i := range batch {
		msgs[i] = batch[i].msg
	}
	return msgs
}

// storeBatch forwards one batch and answers each publish that has a reply
// with its PubAck. When the outcome is unknown (no answer from the leader)
// nothing is answered: the client times out and retries, and its
// Nats-Msg-Id makes the retry safe.
func (js *JetStream) storeBatch(batch []pendingPub) {
	ctx, cancel := context.WithTimeout(context.Background(), pubTimeout)
	defer cancel()
	resp, err := js.raft.Forward(ctx, forwardJSPub, encodePublishRequest(batchMsgs(batch)))
	if err != nil {
		js.log.Warn("stream publish batch not stored", zap.Int("messages", len(batch)), zap.Error(err))
		return
	}
	idx, acks, err := decodePublishResponse(resp)
	if err != nil || len(acks) != len(batch) {
		js.log.Error("bad stream publish response", zap.Int("messages", len(batch)), zap.Int("acks", len(acks)), zap.Error(err))
		return
	}
	// No read-your-writes wait here: a PubAck carries its sequence, and
	// waiting for the local replica would only add latency.
	_ = idx
	r := replier{js: js}
	for i := range batch {
		r.respond(batch[i].reply, acks[i])
	}
}

// leaderPublish proposes a forwarded batch as one Raft entry and returns
// the applied index and one PubAck (JSON) per message.
func (js *JetStream) leaderPublish(ctx context.Context, req []byte) ([]byte, error) {
	if !js.raft.IsLeader() {
		return nil, cluster.ErrNotLeader
	}
	msgs, err := decodePublishRequest(req)
	if err != nil {
		return nil, err
	}
	if unsafeEarlyAck != nil { // only in binaries built with -tags chaosunsafe
		return unsafeEarlyAck(js, msgs)
	}
	res, err := js.propose(ctx, EncodePublishBatch(time.Now(), msgs))
	if err != nil {
		return nil, err
	}
	return encodePublishResponse(js.raft.AppliedIndex(), res, len(msgs))
}

// unsafeEarlyAck, when set (unsafe_ack.go, build tag chaosunsafe), answers
// a publish batch before it is committed. It exists to prove that the
// chaos suite catches a broker that acknowledges too early; production
// binaries never set it.
var unsafeEarlyAck func(js *JetStream, msgs []PublishMsg) ([]byte, error)

// encodePublishResponse encodes a publish batch's result: the applied
// index, then one PubAck (JSON) per message.
func encodePublishResponse(applied uint64, res any, n int) ([]byte, error) {
	acks, ok := res.([]PubAck)
	if !ok || len(acks) != n {
		return nil, fmt.Errorf("publish batch: unexpected result %T", res)
	}
	out := binary.BigEndian.AppendUint64(nil, applied)
	out = binary.BigEndian.AppendUint32(out, uint32(len(acks)))
	var buf []byte
	for i := range acks {
		b, err := appendPubAck(buf[:0], &acks[i])
		if err != nil {
			return nil, fmt.Errorf("encode pub ack: %w", err)
		}
		buf = b
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	return out, nil
}

// appendPubAck appends ack as encoding/json would marshal it. The common
// case (no error, a stream name JSON needs no escapes for) is written
// directly: json.Marshal per message was about 6% of a leader's CPU under
// async publishing.
func appendPubAck(dst []byte, ack *PubAck) ([]byte, error) {
	if ack.Error != nil || !jsonPlain(ack.Stream) {
		b, err := json.Marshal(ack)
		return append(dst, b...), err
	}
	dst = append(dst, `{"stream":"`...)
	dst = append(dst, ack.Stream...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, ack.Seq, 10)
	if ack.Duplicate {
		dst = append(dst, `,"duplicate":true`...)
	}
	return append(dst, '}'), nil
}

// jsonPlain reports whether encoding/json writes s as is between quotes:
// printable ASCII without the characters it escapes.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// Publish batch wire format (node to leader): count u32, then per message
// uvarint-prefixed subject, header and data (the route codec's helpers).
// The response: applied index u64, count u32, uvarint-prefixed PubAck JSON
// per message.
func encodePublishRequest(msgs []PublishMsg) []byte {
	size := 4
	for _, m := range msgs {
		size += 15 + len(m.Subject) + len(m.Header) + len(m.Data)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, size), uint32(len(msgs)))
	for _, m := range msgs {
		b = appendString(b, m.Subject)
		b = appendBytes(b, m.Header)
		b = appendBytes(b, m.Data)
	}
	return b
}

var errBadPublishFrame = errors.New("malformed stream publish frame")

func decodePublishRequest(b []byte) ([]PublishMsg, error) {
	if len(b) < 4 {
		return nil, errBadPublishFrame
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) { // every message takes at least 3 bytes
		return nil, errBadPublishFrame
	}
	msgs := make([]PublishMsg, 0, n)
	for range n {
		var subj, hdr, data []byte
		var err error
		if subj, b, err = readBytes(b); err != nil {
			return nil, err
		}
		if hdr, b, err = readBytes(b); err != nil {
			return nil, err
		}
		if data, b, err = readBytes(b); err != nil {
			return nil, err
		}
		m := PublishMsg{Subject: string(subj), Data: data}
		if len(hdr) > 0 {
			m.Header = hdr
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

func decodePublishResponse(b []byte) (uint64, [][]byte, error) {
	if len(b) < 12 {
		return 0, nil, errBadPublishFrame
	}
	idx := binary.BigEndian.Uint64(b)
	n := binary.BigEndian.Uint32(b[8:])
	b = b[12:]
	if uint64(n) > uint64(len(b)) {
		return 0, nil, errBadPublishFrame
	}
	acks := make([][]byte, 0, n)
	for range n {
		var ack []byte
		var err error
		if ack, b, err = readBytes(b); err != nil {
			return 0, nil, err
		}
		acks = append(acks, ack)
	}
	return idx, acks, nil
}
