package checker

import (
	"github.com/flotilla/flotilla/broker"
)

// checker carries one Check's inputs and report.
type checker struct {
	opts    Options
	r       *Report
	h       *histIndex
	final   map[string]*broker.StateDump // by node, nil dumps dropped
	classes []*logClass                  // nodes grouped by identical log; the first is the reference
	ref     *logClass
}

// Check judges a history against the final state of every node (by node
// name), read after healing once every node applied the leader's commit
// index. It never fails: problems with the inputs themselves are reported
// as KindHistory violations.
func Check(history []Event, final map[string]*broker.StateDump, opts Options) *Report {
	opts = opts.withDefaults()
	r := &Report{max: opts.MaxViolationsPerKind, Stats: Stats{ViolationCounts: make(map[string]int)}}
	c := &checker{opts: opts, r: r, final: make(map[string]*broker.StateDump)}
	c.h = c.indexHistory(history)
	for _, node := range sortedKeys(final) {
		if final[node] == nil {
			r.add(KindHistory, "no final state for node %s", node)
			continue
		}
		c.final[node] = final[node]
	}
	c.classes = groupLogs(c.final)
	if len(c.classes) == 0 {
		r.add(KindHistory, "no final state from any node")
		c.classes = []*logClass{{name: "no node", pos: map[string]int{}, bySeq: map[uint64]int{}}}
	}
	c.ref = c.classes[0]
	r.Stats.Nodes = sortedKeys(c.final)
	if len(c.ref.nodes) > 0 {
		r.Stats.ReferenceNode = c.ref.nodes[0]
	}
	r.Stats.Stored = len(c.ref.msgs)

	c.checkForks()
	dup := make(map[string]bool)
	for _, l := range c.classes {
		c.checkDense(l)
		c.checkStored(l, dup)
	}
	r.Stats.Duplicated = len(dup)
	c.checkAcked()
	c.checkProducerOrder()
	c.checkConsumers()
	ops := c.linOps()
	c.checkWindows(ops, c.checkLinearizable(ops))
	c.availability()
	r.finish()
	return r
}
