package broker

import (
	"fmt"
	"slices"

	"github.com/flotilla/flotilla/storage"
)

// StateDump is one stream's replicated state as a node's state file holds
// it: every message and every consumer's delivery state. The chaos
// checker compares the dumps of all nodes after a run.
type StateDump struct {
	Messages  []DumpMsg               // in sequence order
	Consumers map[string]DumpConsumer // by consumer name
}

// DumpMsg is one stored message.
type DumpMsg struct {
	Seq     uint64
	Subject string
	MsgID   string // its Nats-Msg-Id header, "" if none
	Data    []byte
}

// DumpConsumer is a consumer's replicated state.
type DumpConsumer struct {
	DeliveredConsumer, DeliveredStream uint64
	AckFloorConsumer, AckFloorStream   uint64
	Pending                            []uint64 // stream sequences, sorted
}

// ReadState reads a stream from a (stopped) node's state file. The file is
// opened read-only in effect: nothing is written to it.
func ReadState(path, stream string) (*StateDump, error) {
	st, err := storage.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	defer st.Close()
	out, err := DumpState(st, stream)
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	return out, nil
}

// DumpState reads a stream from an open store (a running node's: tests
// look at what a replica has applied).
func DumpState(st *storage.Store, stream string) (*StateDump, error) {
	out := &StateDump{Consumers: make(map[string]DumpConsumer)}
	err := st.View(func(tx *storage.Tx) error {
		r, _, ok, err := streamReader(tx, stream)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("stream %q: %w", stream, errNoSuchStream)
		}
		c := r.msgs.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			_, m, err := decodeMsgRecord(v)
			if err != nil {
				return fmt.Errorf("seq %d: %w", seqOf(k), err)
			}
			h := parsePubHeaders(m.header)
			out.Messages = append(out.Messages, DumpMsg{Seq: seqOf(k), Subject: string(m.subject), MsgID: string(h.msgID), Data: slices.Clone(m.data)})
		}
		for _, key := range streamConsumerKeys(tx, stream) {
			rec, err := readConsumer(tx, key)
			if err != nil {
				return err
			}
			pending, err := readPending(tx, rec.stream, rec.name)
			if err != nil {
				return err
			}
			d := DumpConsumer{
				DeliveredConsumer: rec.delivered.cons, DeliveredStream: rec.delivered.stream,
				AckFloorConsumer: rec.ackFloor.cons, AckFloorStream: rec.ackFloor.stream,
			}
			for seq := range pending {
				d.Pending = append(d.Pending, seq)
			}
			slices.Sort(d.Pending)
			out.Consumers[rec.name] = d
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
