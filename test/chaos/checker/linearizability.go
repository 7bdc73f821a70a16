package checker

import (
	"fmt"
	"math"
	"time"
)

// The stream log's sequential specification is a deduplicating
// append-only log: publishing a new value appends it at the next seq and
// returns that seq; publishing a stored value appends nothing and returns
// its seq (flagged duplicate); reading seq s returns the value at s once s
// exists. A definite failure appends nothing.
//
// The final log tells what took effect, so each stored value gets exactly
// one appending operation: its ok non-duplicate attempt, else its earliest
// attempt with an unknown outcome, which may take effect at any time after
// its call (so it never returns). Its other ok attempts are duplicate
// publishes, and the ordered consumers' deliveries are reads. Failed
// attempts and unknown attempts that did not store anything constrain
// nothing and are left out. With that, the state is just the log length.

type linKind uint8

const (
	linAppend linKind = iota
	linDup
	linRead
)

// linOp is one operation of the linearizability check.
type linOp struct {
	kind    linKind
	pos     int    // 1-based position in the reference log it appends or reads
	seq     uint64 // the seq stored at pos
	ackSeq  uint64 // the seq the client was told; 0 when none (unknown outcome, read)
	call    int64
	ret     int64 // never for an unknown outcome
	client  string
	attempt int
	ev      int    // history index; -1 for a stored value no attempt explains
	value   string // the value at pos
	readVal string // for reads: the value the consumer got ("" when not recorded)
}

// ok tells whether the op's output agrees with the log.
func (o *linOp) ok() bool {
	return (o.ackSeq == 0 || o.ackSeq == o.seq) && (o.readVal == "" || o.readVal == o.value)
}

func (o *linOp) String() string {
	switch {
	case o.ev < 0:
		return fmt.Sprintf("seq %d (%q, stored by no recorded attempt)", o.seq, o.value)
	case o.kind == linRead && o.readVal != "":
		return fmt.Sprintf("%s's read of seq %d (%q)", o.client, o.seq, o.readVal)
	case o.kind == linRead:
		return fmt.Sprintf("%s's read of seq %d", o.client, o.seq)
	case o.kind == linDup:
		return fmt.Sprintf("%s's publish of %q (attempt %d, acked seq %d as a duplicate)", o.client, o.value, o.attempt, o.ackSeq)
	case o.ackSeq == 0:
		return fmt.Sprintf("%s's publish of %q (attempt %d, unknown outcome, stored at seq %d)", o.client, o.value, o.attempt, o.seq)
	}
	return fmt.Sprintf("%s's publish of %q (attempt %d, acked seq %d)", o.client, o.value, o.attempt, o.ackSeq)
}

// linOps builds the operations, grouped by position: ops[p][0] appends
// position p+1, the rest are duplicate publishes and reads of it.
func (c *checker) linOps() [][]linOp {
	ref := c.ref
	ops := make([][]linOp, len(ref.msgs))
	for p := range ref.msgs {
		m := &ref.msgs[p]
		v := msgValue(m)
		base := linOp{kind: linAppend, pos: p + 1, seq: m.Seq, value: v, ev: -1, call: 0, ret: never, client: "?"}
		vi := c.h.values[v]
		if vi == nil || ref.pos[v] != p+1 {
			// A phantom or a second copy: reported elsewhere; unconstrained here.
			ops[p] = []linOp{base}
			continue
		}
		a := appender(c.h.ev, vi)
		if a >= 0 {
			base.fill(&c.h.ev[a], a)
		}
		ops[p] = []linOp{base}
		for _, i := range vi.okAttempts(c.h.ev) {
			if i != a {
				op := linOp{kind: linDup, pos: p + 1, seq: m.Seq, value: v}
				op.fill(&c.h.ev[i], i)
				ops[p] = append(ops[p], op)
			}
		}
	}
	for i := range c.h.ev {
		e := &c.h.ev[i]
		if e.Kind != EventDeliver || !c.opts.isOrdered(e.Client) {
			continue
		}
		if p := ref.bySeq[e.Seq]; p > 0 {
			op := linOp{kind: linRead, pos: p, seq: e.Seq, value: ops[p-1][0].value, readVal: e.Value}
			op.fill(e, i)
			ops[p-1] = append(ops[p-1], op)
		}
	}
	return ops
}

func (o *linOp) fill(e *Event, i int) {
	o.ev, o.call, o.ret, o.client, o.attempt = i, e.Call, e.Return, e.Client, e.Attempt
	if e.Kind == EventPublish {
		if e.Outcome == OutcomeOK {
			o.ackSeq = e.Seq
		} else {
			o.ret = never
		}
	}
}

// checkLinearizable decides exactly whether the whole history is
// linearizable under the model above, in one pass: appends must take
// effect in log order, each within its [call, return], so the earliest
// time position p can have been appended is max(earliest of p-1, call of
// p); a duplicate publish or read of p must return no earlier than that.
// It returns the position of the first violation, 0 if none.
func (c *checker) checkLinearizable(ops [][]linOp) int {
	start := time.Now()
	first := 0
	var t int64 = math.MinInt64 // earliest time the log can have reached this position
	setBy := -1                 // the position whose call forced t
	flag := func(p int, format string, args ...any) {
		if first == 0 {
			first = p
		}
		c.r.add(KindNotLinearizable, format, args...)
	}
	for p := range ops {
		a := &ops[p][0]
		if !a.ok() {
			flag(p+1, "%s: the log holds it at seq %d", a, a.seq)
		}
		if a.call >= t {
			t, setBy = a.call, p
		} else if t > a.ret {
			b := &ops[setBy][0]
			flag(p+1, "%s returned at %s, but the log puts it after seq %d, %s, which was only called at %s",
				a, at(a.ret), b.seq, b, at(b.call))
			t, setBy = a.ret, p // carry on from the latest it could have been
		}
		for i := range ops[p][1:] {
			o := &ops[p][1+i]
			if !o.ok() {
				flag(p+1, "%s: the log holds %q at seq %d", o, a.value, a.seq)
			}
			if o.ret < t {
				why := ""
				if setBy != p {
					why = fmt.Sprintf(", after seq %d, %s, called at %s", ops[setBy][0].seq, &ops[setBy][0], at(ops[setBy][0].call))
				}
				flag(p+1, "%s returned at %s, before seq %d could have been stored: %s, no earlier than %s%s",
					o, at(o.ret), a.seq, a, at(t), why)
			}
		}
	}
	n := 0
	for _, g := range ops {
		n += len(g)
	}
	res := WindowResult{Method: "exact", Ops: n, Result: "ok", Elapsed: time.Since(start)}
	if len(ops) > 0 {
		res.FirstSeq, res.LastSeq = ops[0][0].seq, ops[len(ops)-1][0].seq
	}
	if first > 0 {
		res.Result = "illegal"
	}
	c.r.Stats.Linearizability = append(c.r.Stats.Linearizability, res)
	return first
}
