package checker

import (
	"maps"
	"slices"
	"testing"

	"github.com/flotilla/flotilla/broker"
)

// pub is a publish attempt; ok/dup/fail/unknown set its outcome.
func pub(client, value string, attempt int, call, ret int64) Event {
	return Event{Kind: EventPublish, Client: client, Value: value, Attempt: attempt, Call: call, Return: ret, Outcome: OutcomeOK}
}

func ok(e Event, seq uint64) Event { e.Seq = seq; return e }

func dup(e Event, seq uint64) Event { e.Seq, e.Duplicate = seq, true; return e }

func fail(e Event, msg string) Event { e.Outcome, e.Err = OutcomeFail, msg; return e }

func unknown(e Event) Event { e.Outcome, e.Err = OutcomeUnknown, "timeout"; return e }

func deliver(client string, seq uint64, value string, call, ret int64) Event {
	return Event{Kind: EventDeliver, Client: client, Seq: seq, Value: value, Call: call, Return: ret, Delivered: 1}
}

func ack(client string, seq uint64, call, ret int64) Event {
	return Event{Kind: EventAck, Client: client, Seq: seq, Outcome: OutcomeOK, Call: call, Return: ret}
}

func msg(seq uint64, value string) broker.DumpMsg {
	return broker.DumpMsg{Seq: seq, Subject: "chaos.data", MsgID: value, Data: []byte(value)}
}

// logOf stores values at seqs 1..n.
func logOf(values ...string) []broker.DumpMsg {
	var out []broker.DumpMsg
	for i, v := range values {
		out = append(out, msg(uint64(i+1), v))
	}
	return out
}

// nodes gives n1..n3 the same (deep-copied) state.
func nodes(msgs []broker.DumpMsg, consumers map[string]broker.DumpConsumer) map[string]*broker.StateDump {
	out := make(map[string]*broker.StateDump)
	for _, n := range []string{"n1", "n2", "n3"} {
		d := &broker.StateDump{Messages: slices.Clone(msgs), Consumers: maps.Clone(consumers)}
		for i := range d.Messages {
			d.Messages[i].Data = slices.Clone(d.Messages[i].Data)
		}
		out[n] = d
	}
	return out
}

// baseline is a clean run: two producers with overlapping publishes, an
// unknown outcome that was stored and confirmed by a duplicate ack, a
// definite failure retried, an unknown that never landed, a leader kill,
// a durable consumer d1 acking everything and an ordered consumer o1.
//
//	seq 1 a (p1) | seq 2 c (p2, attempt 1 unknown) | seq 3 b (p1) | seq 4 d (p2, attempt 2)
func baseline() ([]Event, map[string]*broker.StateDump) {
	h := []Event{
		ok(pub("p1", "a", 1, 0, 10), 1),
		unknown(pub("p2", "c", 1, 5, 30)),
		{Kind: EventNemesis, Client: "nemesis", Value: "kill leader n1", Fault: "kill-leader", Call: 20, Return: 35},
		ok(pub("p1", "b", 1, 12, 45), 3),
		dup(pub("p2", "c", 2, 31, 40), 2),
		fail(pub("p2", "d", 1, 41, 50), "no leader"),
		ok(pub("p2", "d", 2, 51, 60), 4),
		unknown(pub("p1", "e", 1, 46, 70)),
	}
	for i, v := range []string{"a", "c", "b", "d"} {
		seq, t := uint64(i+1), []int64{11, 41, 46, 61}[i]
		d, a := deliver("d1", seq, v, t, t+1), ack("d1", seq, t+2, t+3)
		d.ConsumerSeq, a.ConsumerSeq = 2*seq, 2*seq
		h = append(h, d, a, deliver("o1", seq, v, t, t+1))
	}
	final := nodes(logOf("a", "c", "b", "d"), map[string]broker.DumpConsumer{
		"d1": {DeliveredConsumer: 4, DeliveredStream: 4, AckFloorConsumer: 4, AckFloorStream: 4},
	})
	return h, final
}

// kinds returns the distinct violation kinds of a report.
func kinds(r *Report) []string {
	return sortedKeys(r.Stats.ViolationCounts)
}

func mustCheck(t *testing.T, h []Event, final map[string]*broker.StateDump, opts Options) *Report {
	t.Helper()
	r := Check(h, final, opts)
	if len(r.Violations) == 0 != r.OK() {
		t.Fatalf("OK() = %v with %d violations", r.OK(), len(r.Violations))
	}
	return r
}
