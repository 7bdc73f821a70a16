//go:build chaosunsafe

package broker

import (
	"context"
	"time"
)

// This file is compiled only with -tags chaosunsafe, into a binary used to
// show that the chaos suite catches a broker that breaks its promise: it
// acknowledges stream publishes before Raft has committed them, guessing
// the sequences from the local replica. A leader that dies with such a
// batch in flight has acknowledged messages that are lost.
func init() { unsafeEarlyAck = earlyAck }

func earlyAck(js *JetStream, msgs []PublishMsg) ([]byte, error) {
	acks := make([]PubAck, len(msgs))
	next := map[string]uint64{}
	for i, m := range msgs {
		name, ok := js.fsm.StreamForSubject([]byte(m.Subject))
		if !ok {
			acks[i] = PubAck{Error: ErrNoStreamMatch()}
			continue
		}
		if _, seen := next[name]; !seen {
			if info, e := js.fsm.StreamInfo(name); e == nil {
				next[name] = info.State.LastSeq
			}
		}
		next[name]++
		acks[i] = PubAck{Stream: name, Seq: next[name]}
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), pubTimeout)
		defer cancel()
		_, _ = js.propose(ctx, EncodePublishBatch(time.Now(), msgs))
	}()
	return encodePublishResponse(js.raft.AppliedIndex(), acks, len(msgs))
}
