package broker

import (
	"sync"
	"time"
)

// pullTracker remembers the pull requests this node's clients have waiting
// on the leader's consumer engine, so that when leadership moves their
// clients are told at once with 409 Leadership Change (DESIGN.md §4) and
// pull again, instead of waiting for a missed heartbeat or the request's
// expiry. Waiting requests live only in the leader's memory: a leader that
// steps down answers them itself, but one that died cannot, and the new
// leader never saw them. The node the client is on can: it forwarded them.
//
// The tracker does not see a request complete (the leader sends messages
// and statuses straight to the client's inbox), so an entry stays until the
// request's expiry. A 409 for a request that already completed is harmless:
// a Fetch has unsubscribed its inbox by then, and Consume, whose pulls share
// one inbox, resets its pending count and pulls again, which is what it has
// to do after a leader change anyway. The same holds for a second 409 when a
// leader that stepped down answered too.
type pullTracker struct {
	mu   sync.Mutex
	reqs map[string]trackedPull // by reply subject
	// leader is the leader at the last sweep; dirty is set when an entry
	// names another one, so the next sweep looks at every entry.
	leader     string
	dirty      bool
	nextExpiry time.Time
}

type trackedPull struct {
	leader   string    // the leader the request was forwarded to
	deadline time.Time // the request's expiry
}

// Tunables of the pull tracker.
const (
	maxTrackedPulls  = 1 << 16               // beyond this, clients rely on heartbeats
	noExpiryTracked  = time.Hour             // how long a request without expiry is tracked
	pullExpiryPeriod = time.Second           // how often expired entries are dropped
	pullTrackEvery   = 20 * time.Millisecond // how often leadership is checked
)

func newPullTracker() *pullTracker {
	return &pullTracker{reqs: make(map[string]trackedPull)}
}

// track records a request to reply forwarded while leader led, lasting
// expires (0: no expiry). It returns true when the reply subject already
// had a request waiting on another leader: that one is lost, and the
// caller answers it.
func (t *pullTracker) track(reply, leader string, expires time.Duration, now time.Time) (lost bool) {
	if expires <= 0 {
		expires = noExpiryTracked
	}
	deadline := now.Add(expires)
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.reqs[reply]
	switch {
	case !ok && len(t.reqs) >= maxTrackedPulls:
		return false
	case ok && old.leader == leader && old.deadline.After(deadline):
		deadline = old.deadline // pulls sharing an inbox: keep the latest expiry
	}
	t.reqs[reply] = trackedPull{leader: leader, deadline: deadline}
	if leader != t.leader {
		t.dirty = true
	}
	return ok && old.leader != leader
}

// sweep drops expired entries and returns (and drops) those forwarded to a
// leader other than the current one.
func (t *pullTracker) sweep(leader string, now time.Time) (lost []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if leader == t.leader && !t.dirty && now.Before(t.nextExpiry) {
		return nil
	}
	for reply, r := range t.reqs {
		switch {
		case r.leader != leader:
			lost = append(lost, reply)
			delete(t.reqs, reply)
		case !now.Before(r.deadline):
			delete(t.reqs, reply)
		}
	}
	t.leader, t.dirty, t.nextExpiry = leader, false, now.Add(pullExpiryPeriod)
	return lost
}

// len returns the number of tracked requests.
func (t *pullTracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.reqs)
}

// trackPull records a pull request the leader accepted. before and after
// are this node's view of the leader around the forward: a request
// forwarded while no leader was known went to the one known after.
func (js *JetStream) trackPull(reply string, body []byte, before, after string) {
	pr, bad := ParsePullRequest(body)
	if bad != "" || (pr.NoWait && pr.Expires == 0) {
		return // answered at once
	}
	leader := before
	if leader == "" {
		leader = after
	}
	if js.pulls.track(reply, leader, pr.Expires, time.Now()) {
		js.sendStatus(reply, StatusConflict(StatusTextLeadershipChange, 0, 0, false))
	}
}

// pullTrackLoop answers the tracked pull requests of a leader that lost
// leadership.
func (js *JetStream) pullTrackLoop() {
	js.every(pullTrackEvery, func() {
		leader, _ := js.raft.Leader()
		for _, reply := range js.pulls.sweep(leader, time.Now()) {
			js.sendStatus(reply, StatusConflict(StatusTextLeadershipChange, 0, 0, false))
		}
	})
}
