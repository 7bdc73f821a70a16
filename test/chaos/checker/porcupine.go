package checker

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/anishathalye/porcupine"
)

// linOutput is what a client got back: the acked seq of a publish (0 for
// an unknown outcome) or the value a read returned ("" if not recorded).
type linOutput struct {
	ackSeq  uint64
	readVal string
}

// logModel is the deduplicating append-only log (see linearizability.go)
// for positions from+1 on: its state is the log's length.
//
// Checking a window of positions on its own is sound: restrict any
// linearization of the whole history to the window's operations and clamp
// the length to [from, last]; every step of the window's operations stays
// legal and nothing else changes the clamped length. A window can only
// miss violations that span its edges.
func logModel(from int) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return from },
		Step: func(state, input, output any) (bool, any) {
			n, op, out := state.(int), input.(*linOp), output.(linOutput)
			if out.ackSeq != 0 && out.ackSeq != op.seq || out.readVal != "" && out.readVal != op.value {
				return false, n
			}
			if op.kind == linAppend {
				return n == op.pos-1, op.pos
			}
			return n >= op.pos, n
		},
		Hash:              func(state any) uint64 { return uint64(state.(int)) },
		DescribeOperation: func(input, _ any) string { return input.(*linOp).String() },
		DescribeState:     func(state any) string { return fmt.Sprintf("%d messages", state.(int)) },
	}
}

// checkWindows runs porcupine over windows of positions: the whole log
// when it fits, else the first, the last, one picked by the seed and one
// around bad, the first position the exact check flagged (0: none).
func (c *checker) checkWindows(ops [][]linOp, bad int) {
	w, n := c.opts.LinearizabilityWindow, len(ops)
	if w < 0 || n == 0 {
		return
	}
	var starts []int // 1-based first positions
	if n <= w {
		starts = []int{1}
	} else {
		if bad > 0 {
			starts = append(starts, max(1, min(bad-w/2, n-w+1)))
		}
		rng := rand.New(rand.NewPCG(uint64(c.opts.Seed), 0x636861))
		starts = append(starts, 1, 1+rng.IntN(n-w+1), n-w+1)
	}
	done := make(map[int]bool)
	for _, a := range starts {
		if !done[a] {
			done[a] = true
			c.checkWindow(ops, a, min(a+w-1, n))
		}
	}
}

// checkWindow checks positions a..b with porcupine.
func (c *checker) checkWindow(ops [][]linOp, a, b int) {
	lanes := make(map[string]int)
	var hist []porcupine.Operation
	lo, hi := int64(never), int64(0)
	for p := a; p <= b; p++ {
		for i := range ops[p-1] {
			op := &ops[p-1][i]
			lane := op.client
			if op.ret == never {
				lane += " (pending)"
			}
			id, ok := lanes[lane]
			if !ok {
				id = len(lanes)
				lanes[lane] = id
			}
			hist = append(hist, porcupine.Operation{
				ClientId: id, Input: op, Output: linOutput{ackSeq: op.ackSeq, readVal: op.readVal},
				Call: op.call, Return: op.ret,
			})
			lo, hi = min(lo, op.call), max(hi, op.call, min(op.ret, c.h.end))
		}
	}
	model := logModel(a - 1)
	start := time.Now()
	res := porcupine.CheckOperationsTimeout(model, hist, c.opts.LinearizabilityTimeout)
	wr := WindowResult{Method: "porcupine", FirstSeq: ops[a-1][0].seq, LastSeq: ops[b-1][0].seq, Ops: len(hist), Elapsed: time.Since(start)}
	switch res {
	case porcupine.Ok:
		wr.Result = "ok"
	case porcupine.Unknown:
		wr.Result = "timeout"
	default:
		wr.Result = "illegal"
		c.r.add(KindNotLinearizable, "porcupine: the %d operations on seqs %d..%d are not linearizable (see porcupine.html)", len(hist), wr.FirstSeq, wr.LastSeq)
		if c.r.linModel == nil {
			_, info := porcupine.CheckOperationsVerbose(model, hist, c.opts.LinearizabilityTimeout)
			info.AddAnnotations(c.nemesisAnnotations(lo, hi))
			c.r.linModel, c.r.linInfo = &model, info
		}
	}
	c.r.Stats.Linearizability = append(c.r.Stats.Linearizability, wr)
}

// nemesisAnnotations marks the faults overlapping [lo, hi] in the view.
func (c *checker) nemesisAnnotations(lo, hi int64) []porcupine.Annotation {
	var out []porcupine.Annotation
	for _, i := range c.h.nemeses {
		e := &c.h.ev[i]
		end := e.Return
		if end < e.Call {
			end = hi
		}
		if e.Call > hi || end < lo {
			continue
		}
		out = append(out, porcupine.Annotation{
			Tag: "nemesis", Start: max(e.Call, lo), End: min(end, hi),
			Description: e.Value, Details: e.Fault, BackgroundColor: "#f6c6c6",
		})
	}
	return out
}
