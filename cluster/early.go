package cluster

import (
	"sync"
	"unsafe"
)

// earlyAnswers finds, for an entry being applied, the Proposal this node
// made of it, so that the state machine can answer the proposer before
// its own storage commit (Entry.Early).
//
// Entries are matched by the address of their bytes. On the leader,
// hashicorp/raft hands the FSM the very Log its Apply future holds
// (processLogs applies &future.log), whose Data is the slice Propose was
// given. An entry read back from the log store (on a follower, after a
// restart or a leader change) has other bytes and no early answer; its
// proposer, if any, gets the usual one when the apply returns. A missed
// match costs only that: latency, never a wrong answer.
type earlyAnswers struct {
	mu sync.Mutex
	m  map[*byte]*Proposal
}

func newEarlyAnswers() *earlyAnswers { return &earlyAnswers{m: make(map[*byte]*Proposal)} }

// add registers p as the proposal of cmd. A second proposal of the same
// bytes while the first is pending is not registered: it takes the usual
// path.
func (e *earlyAnswers) add(cmd []byte, p *Proposal) {
	if len(cmd) == 0 {
		return
	}
	k := unsafe.SliceData(cmd)
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, taken := e.m[k]; !taken {
		e.m[k] = p
		p.key = k
	}
}

// take returns and unregisters the pending proposal of data, if any.
func (e *earlyAnswers) take(data []byte) *Proposal {
	if len(data) == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.m) == 0 { // a follower's case, every time
		return nil
	}
	k := unsafe.SliceData(data)
	p := e.m[k]
	if p != nil {
		delete(e.m, k)
	}
	return p
}

// drop unregisters p once its proposer stops waiting.
func (e *earlyAnswers) drop(p *Proposal) {
	if p.key == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m[p.key] == p {
		delete(e.m, p.key)
	}
}

// answer is an Entry's Early function: the first result wins, later ones
// are dropped (the channel holds one).
func (p *Proposal) answer(result any) {
	select {
	case p.early <- result:
	default:
	}
}
