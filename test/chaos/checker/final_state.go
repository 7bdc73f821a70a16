package checker

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/flotilla/flotilla/broker"
)

// msgValue is the value a stored message carries: its Nats-Msg-Id, or its
// data when it has none.
func msgValue(m *broker.DumpMsg) string {
	if m.MsgID != "" {
		return m.MsgID
	}
	return string(m.Data)
}

func sameMsg(a, b broker.DumpMsg) bool {
	return a.Seq == b.Seq && a.Subject == b.Subject && a.MsgID == b.MsgID && bytes.Equal(a.Data, b.Data)
}

// logClass is a set of nodes holding the identical message list.
type logClass struct {
	nodes []string
	msgs  []broker.DumpMsg
	pos   map[string]int // value -> 1-based position of its first occurrence
	bySeq map[uint64]int // seq -> 1-based position
	name  string         // "n1" or "[n1 n2]", for details
}

func (l *logClass) seqOf(value string) (uint64, bool) {
	p, ok := l.pos[value]
	if !ok {
		return 0, false
	}
	return l.msgs[p-1].Seq, true
}

// groupLogs splits the nodes by message list. The first class is the
// reference: the one most nodes agree on (then the longest, then by name).
func groupLogs(final map[string]*broker.StateDump) []*logClass {
	var classes []*logClass
	for _, node := range sortedKeys(final) {
		msgs := final[node].Messages
		i := slices.IndexFunc(classes, func(l *logClass) bool { return slices.EqualFunc(l.msgs, msgs, sameMsg) })
		if i < 0 {
			classes = append(classes, &logClass{msgs: msgs})
			i = len(classes) - 1
		}
		classes[i].nodes = append(classes[i].nodes, node)
	}
	for _, l := range classes {
		l.name = l.nodes[0]
		if len(l.nodes) > 1 {
			l.name = "[" + strings.Join(l.nodes, " ") + "]"
		}
		l.pos = make(map[string]int, len(l.msgs))
		l.bySeq = make(map[uint64]int, len(l.msgs))
		for i := range l.msgs {
			if v := msgValue(&l.msgs[i]); l.pos[v] == 0 {
				l.pos[v] = i + 1
			}
			if l.bySeq[l.msgs[i].Seq] == 0 {
				l.bySeq[l.msgs[i].Seq] = i + 1
			}
		}
	}
	slices.SortStableFunc(classes, func(a, b *logClass) int {
		return cmp.Or(-cmp.Compare(len(a.nodes), len(b.nodes)), -cmp.Compare(len(a.msgs), len(b.msgs)))
	})
	return classes
}

func describeMsg(m *broker.DumpMsg) string {
	s := fmt.Sprintf("%q", msgValue(m))
	if m.MsgID != "" && m.MsgID != string(m.Data) {
		s += fmt.Sprintf(" (data %q)", m.Data)
	}
	return s + " on " + m.Subject
}

// checkForks reports, for each pair of differing classes, their first
// difference.
func (c *checker) checkForks() {
	for i, a := range c.classes {
		for _, b := range c.classes[i+1:] {
			n := min(len(a.msgs), len(b.msgs))
			j := 0
			for j < n && sameMsg(a.msgs[j], b.msgs[j]) {
				j++
			}
			switch {
			case j < n:
				c.r.add(KindForked, "%s and %s differ at their message %d: %s has seq %d = %s, %s has seq %d = %s",
					a.name, b.name, j+1, a.name, a.msgs[j].Seq, describeMsg(&a.msgs[j]), b.name, b.msgs[j].Seq, describeMsg(&b.msgs[j]))
			case len(a.msgs) > n:
				c.r.add(KindForked, "%s holds %d messages, %s only %d: %s lacks seqs %d..%d",
					a.name, len(a.msgs), b.name, n, b.name, a.msgs[n].Seq, a.msgs[len(a.msgs)-1].Seq)
			default:
				c.r.add(KindForked, "%s holds %d messages, %s only %d: %s lacks seqs %d..%d",
					b.name, len(b.msgs), a.name, n, a.name, b.msgs[n].Seq, b.msgs[len(b.msgs)-1].Seq)
			}
		}
	}
}

// checkDense reports sequences that are not exactly 1..N in order: the
// workload stream has no limits and no deletes.
func (c *checker) checkDense(l *logClass) {
	want := uint64(1)
	for i := range l.msgs {
		got := l.msgs[i].Seq
		switch {
		case got > want:
			c.r.add(KindGap, "%s: seqs %d..%d are missing (seq %d follows %d)", l.name, want, got-1, got, want-1)
		case got < want:
			c.r.add(KindGap, "%s: seq %d comes after seq %d (repeated or out of order)", l.name, got, want-1)
			continue // keep expecting the same next seq
		}
		want = got + 1
	}
}

// checkStored reports values stored twice, values nobody published and
// values whose every attempt failed definitely.
func (c *checker) checkStored(l *logClass, dup map[string]bool) {
	for i := range l.msgs {
		m := &l.msgs[i]
		v := msgValue(m)
		if p := l.pos[v]; p != i+1 {
			c.r.add(KindDuplicate, "%s: value %q is stored at seq %d and again at seq %d", l.name, v, l.msgs[p-1].Seq, m.Seq)
			dup[v] = true
			continue
		}
		vi := c.h.values[v]
		if vi == nil {
			c.r.add(KindPhantom, "%s: seq %d holds %s, which no producer published", l.name, m.Seq, describeMsg(m))
			continue
		}
		if appender(c.h.ev, vi) < 0 {
			c.r.add(KindFailStored, "%s: seq %d holds %q although none of %s's %d attempts could have stored it (%s)",
				l.name, m.Seq, v, vi.producer, len(vi.attempts), c.outcomes(vi))
		}
	}
}

// outcomes summarises a value's attempts: "fail (stream not found), ok duplicate seq 4".
func (c *checker) outcomes(vi *valueInfo) string {
	var parts []string
	for _, i := range vi.attempts {
		e := &c.h.ev[i]
		s := e.Outcome
		if e.Outcome == OutcomeOK {
			s += fmt.Sprintf(" seq %d", e.Seq)
			if e.Duplicate {
				s += " duplicate"
			}
		}
		if e.Err != "" {
			s += " (" + e.Err + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// appender picks the attempt that stored a value, if it was stored: the
// first ok attempt not flagged duplicate, else the earliest attempt with
// an unknown outcome (a later unknown attempt could only have stored it in
// a subset of the times the earliest could), else the earliest ok attempt
// flagged duplicate: Flotilla retries a forwarded publish whose leader died
// or stepped down before answering, so one client attempt can store the
// value and then be answered by its own retry with duplicate:true. -1 when
// no attempt could have.
func appender(h []Event, vi *valueInfo) int {
	unknown, dup := -1, -1
	for _, i := range vi.attempts {
		switch {
		case h[i].Outcome == OutcomeOK && !h[i].Duplicate:
			return i
		case h[i].Outcome == OutcomeUnknown && unknown < 0:
			unknown = i
		case h[i].Outcome == OutcomeOK && dup < 0:
			dup = i
		}
	}
	if unknown >= 0 {
		return unknown
	}
	return dup
}

// checkAcked reports acknowledged values that some node lacks or holds at
// another seq than acknowledged, and acks of one value that disagree.
func (c *checker) checkAcked() {
	for _, v := range sortedKeys(c.h.values) {
		vi := c.h.values[v]
		oks := vi.okAttempts(c.h.ev)
		if len(oks) == 0 {
			continue
		}
		first := &c.h.ev[oks[0]]
		for _, i := range oks[1:] {
			if e := &c.h.ev[i]; e.Seq != first.Seq {
				c.r.add(KindAckMismatch, "%s was acked seq %d but %s was acked seq %d", attemptName(first), first.Seq, attemptName(e), e.Seq)
			}
		}
		var missing []string
		moved := make(map[uint64][]string) // stored seq -> nodes
		for _, l := range c.classes {
			seq, ok := l.seqOf(v)
			switch {
			case !ok:
				missing = append(missing, l.nodes...)
			case seq != first.Seq:
				moved[seq] = append(moved[seq], l.nodes...)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			c.r.Stats.Lost++
			c.r.add(KindLost, "%s was acked seq %d at %s, but it is missing on %s", attemptName(first), first.Seq, at(first.Return), strings.Join(missing, " "))
		}
		for _, seq := range sortedKeys(moved) {
			slices.Sort(moved[seq])
			c.r.add(KindAckMismatch, "%s was acked seq %d, but %s hold it at seq %d", attemptName(first), first.Seq, strings.Join(moved[seq], " "), seq)
		}
	}
}
