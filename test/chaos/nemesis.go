package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Nemesis runs a schedule against a backend, one fault at a time: wait
// until the cluster is healthy, inject, hold, heal, record the fault as a
// nemesis event, wait until healthy again, let the workload run quietly.
type Nemesis struct {
	b   Backend
	h   *History
	log func(format string, args ...any)
	// RecoverTimeout bounds each wait for a healthy cluster.
	RecoverTimeout time.Duration
	// Probe, if set, must succeed on every node for the cluster to count
	// as healthy: it checks that the node really serves clients (Raft
	// status alone misses a node that cannot reach the leader's links).
	Probe func(ctx context.Context, node string) error

	down   map[string]bool // nodes killed or stopped and not restarted yet
	paused map[string]bool
	// Recoveries lists, per step run, how long after the heal every node
	// served clients again.
	Recoveries []Recovery
	// effective is when the current fault took effect (see inEffect).
	effective int64
}

// Recovery is how long the cluster took to serve again after one fault
// was healed (kill: restarted; partition: healed; pause: continued).
type Recovery struct {
	Fault, Desc string
	Held        time.Duration // from injection to heal
	Recovered   time.Duration // from heal until WaitHealthy passed
}

// NewNemesis returns a nemesis for b recording into h.
func NewNemesis(b Backend, h *History, logf func(string, ...any)) *Nemesis {
	return &Nemesis{b: b, h: h, log: logf, RecoverTimeout: 120 * time.Second,
		down: map[string]bool{}, paused: map[string]bool{}}
}

// Run executes every step of s. It returns early only when ctx ends or the
// cluster does not recover (a liveness failure worth reporting).
func (n *Nemesis) Run(ctx context.Context, s Schedule) error {
	for i, st := range s.Steps {
		leader, err := n.WaitHealthy(ctx)
		if err != nil {
			return fmt.Errorf("before step %d (%s): %w", i+1, st.Fault, err)
		}
		call := n.h.Now()
		n.log("step %d/%d: %s (leader %s)", i+1, len(s.Steps), st.Fault, leader)
		n.effective = 0
		desc, healedAt, err := n.inject(ctx, st, leader)
		if n.effective != 0 {
			call = n.effective
		}
		ev := Event{Kind: KindNemesis, Client: "nemesis", Call: call, Return: healedAt, Value: desc, Fault: st.Fault}
		if err != nil {
			ev.Err = err.Error()
		}
		n.h.Add(ev)
		if err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, desc, err)
		}
		t0 := time.Now()
		if _, err := n.WaitHealthy(ctx); err != nil {
			return fmt.Errorf("after step %d (%s): %w", i+1, desc, err)
		}
		rec := Recovery{Fault: st.Fault, Desc: desc, Held: time.Duration(healedAt - call),
			Recovered: time.Duration(n.h.Now() - healedAt)}
		n.Recoveries = append(n.Recoveries, rec)
		n.log("step %d/%d: %s: healed after %.1fs, every node serving %.1fs later (%.1fs after the wait began)", i+1, len(s.Steps), desc,
			rec.Held.Seconds(), rec.Recovered.Seconds(), time.Since(t0).Seconds())
		if err := sleepCtx(ctx, st.Quiet); err != nil {
			return err
		}
	}
	return nil
}

// inEffect marks the current fault as in effect from now on: the nemesis
// event starts here, not when the nemesis began acting (a docker kill of
// five containers takes a while, and publishes that succeed meanwhile say
// nothing about availability under the fault).
func (n *Nemesis) inEffect() {
	if n.effective == 0 {
		n.effective = n.h.Now()
	}
}

// inject applies one step and heals it. It returns the fault's
// description, the time it was healed (history clock) and an error if the
// backend failed.
func (n *Nemesis) inject(ctx context.Context, st Step, leader string) (string, int64, error) {
	names := n.b.Nodes()
	pick := func(i int) string { return names[st.Pick[i]] }
	hold := func() error { return sleepCtx(ctx, st.Hold) }
	switch st.Fault {
	case FaultKillLeader:
		return n.killFor(ctx, "kill leader", hold, leader)
	case FaultKillRandom:
		return n.killFor(ctx, "kill", hold, pick(0))
	case FaultKillMinority:
		return n.killFor(ctx, "kill minority", hold, minority(st, names, leader)...)
	case FaultKillAll:
		return n.killFor(ctx, "kill all", hold, names...)
	case FaultPauseLeader:
		return n.pauseFor(ctx, "pause leader", hold, leader)
	case FaultPauseMinority:
		return n.pauseFor(ctx, "pause minority", hold, minority(st, names, leader)...)
	case FaultPauseKill:
		target := leader
		if !st.Leader {
			target = firstOther(st, names, leader)
		}
		return n.pauseKill(ctx, hold, target)
	case FaultIsolateLeader:
		rest := others(names, []string{leader})
		return n.partitionFor(ctx, "partition leader "+groups([]string{leader}, rest), hold,
			Partition{Cuts: bothWays([]string{leader}, rest), Isolated: []string{leader}})
	case FaultPartitionHalves:
		m := minority(st, names, leader)
		rest := others(names, m)
		return n.partitionFor(ctx, "partition "+groups(m, rest), hold, Partition{Cuts: bothWays(m, rest), Isolated: m})
	case FaultPartitionOneWay:
		return n.partitionFor(ctx, "partition one-way", hold, oneWay(st, names, leader))
	case FaultPartitionRing:
		return n.partitionFor(ctx, "partition ring", hold, ring(st, names))
	case FaultRollingRestart:
		return n.rollingRestart(ctx, st, names)
	case FaultStopLeader:
		return n.stopFor(ctx, hold, leader)
	case FaultMembership:
		return n.membership(ctx, hold, firstOther(st, names, leader), leader)
	}
	return st.Fault, n.h.Now(), fmt.Errorf("unknown fault %q", st.Fault)
}

// killFor SIGKILLs targets together, holds, restarts them.
func (n *Nemesis) killFor(ctx context.Context, what string, hold func() error, targets ...string) (string, int64, error) {
	desc := fmt.Sprintf("%s %v", what, targets)
	err := n.b.Kill(ctx, targets...)
	n.inEffect()
	for _, t := range targets {
		n.down[t] = true // even after an error: HealAll restarts what is not running
	}
	if err != nil {
		return desc, n.h.Now(), err
	}
	if err := hold(); err != nil {
		return desc, n.h.Now(), err
	}
	healed := n.h.Now()
	return desc, healed, n.restart(ctx, targets...)
}

func (n *Nemesis) restart(ctx context.Context, targets ...string) error {
	for _, t := range targets {
		if err := n.b.Restart(ctx, t); err != nil {
			return err
		}
		delete(n.down, t)
	}
	return nil
}

// pauseFor SIGSTOPs targets, holds, SIGCONTs them.
func (n *Nemesis) pauseFor(ctx context.Context, what string, hold func() error, targets ...string) (string, int64, error) {
	desc := fmt.Sprintf("%s %v", what, targets)
	err := n.b.Pause(ctx, targets...)
	n.inEffect()
	for _, t := range targets {
		n.paused[t] = true
	}
	if err != nil {
		return desc, n.h.Now(), err
	}
	herr := hold()
	healed := n.h.Now()
	return desc, healed, errors.Join(herr, n.resume(ctx, targets...))
}

func (n *Nemesis) resume(ctx context.Context, targets ...string) error {
	var errs []error
	for _, t := range targets {
		if err := n.b.Resume(ctx, t); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(n.paused, t)
	}
	return errors.Join(errs...)
}

// pauseKill freezes target, SIGKILLs it while frozen (it never runs again
// after the pause: whatever it had not fsynced is gone), then restarts it.
func (n *Nemesis) pauseKill(ctx context.Context, hold func() error, target string) (string, int64, error) {
	desc := fmt.Sprintf("pause then kill %s", target)
	if err := n.b.Pause(ctx, target); err != nil {
		return desc, n.h.Now(), err
	}
	n.inEffect()
	n.paused[target] = true
	if err := hold(); err != nil {
		return desc, n.h.Now(), err
	}
	if err := n.b.Kill(ctx, target); err != nil {
		return desc, n.h.Now(), err
	}
	delete(n.paused, target)
	n.down[target] = true
	healed := n.h.Now()
	return desc, healed, n.restart(ctx, target)
}

// partitionFor applies p, holds, heals.
func (n *Nemesis) partitionFor(ctx context.Context, desc string, hold func() error, p Partition) (string, int64, error) {
	if s := p.String(); s != "" && desc != "" {
		desc += " (" + s + ")"
	}
	if err := n.b.Partition(ctx, p); err != nil {
		return desc, n.h.Now(), errors.Join(err, n.b.Heal(ctx))
	}
	n.inEffect()
	herr := hold()
	healed := n.h.Now()
	return desc, healed, errors.Join(herr, n.b.Heal(ctx))
}

// rollingRestart stops (SIGTERM) and restarts every node in Pick order,
// waiting for a healthy cluster before the next one.
func (n *Nemesis) rollingRestart(ctx context.Context, st Step, names []string) (string, int64, error) {
	var order []string
	for _, i := range st.Pick {
		order = append(order, names[i])
	}
	desc := fmt.Sprintf("rolling restart %v", order)
	n.inEffect() // the first SIGTERM: the node stops serving at once
	for _, t := range order {
		if err := n.b.Stop(ctx, t); err != nil {
			return desc, n.h.Now(), err
		}
		n.down[t] = true
		if err := n.restart(ctx, t); err != nil {
			return desc, n.h.Now(), err
		}
		if _, err := n.WaitHealthy(ctx); err != nil {
			return desc, n.h.Now(), fmt.Errorf("after restarting %s: %w", t, err)
		}
	}
	return desc, n.h.Now(), nil
}

// stopFor stops the leader gracefully (it hands leadership over), holds,
// restarts it.
func (n *Nemesis) stopFor(ctx context.Context, hold func() error, target string) (string, int64, error) {
	desc := fmt.Sprintf("graceful stop of leader %s", target)
	n.inEffect() // the SIGTERM: the node stops serving at once
	if err := n.b.Stop(ctx, target); err != nil {
		return desc, n.h.Now(), err
	}
	n.down[target] = true
	if err := hold(); err != nil {
		return desc, n.h.Now(), err
	}
	healed := n.h.Now()
	return desc, healed, n.restart(ctx, target)
}

// membership decommissions target through another node's http listener
// (POST /cluster/remove, forwarded to the leader), waits until it left the
// Raft configuration, stops it, wipes its data and starts it again: it
// joins as a fresh node and the leader adds it back as a voter.
func (n *Nemesis) membership(ctx context.Context, hold func() error, target, leader string) (string, int64, error) {
	asker := leader
	for _, o := range n.b.Nodes() {
		if o != target && o != leader {
			asker = o // a follower, so the removal is forwarded
			break
		}
	}
	desc := fmt.Sprintf("remove %s (asked %s), wipe it, add it back", target, asker)
	if err := removeNode(ctx, n.b.HTTPURL(asker), target); err != nil {
		return desc, n.h.Now(), err
	}
	n.inEffect()
	err := pollUntil(ctx, 60*time.Second, func() error {
		st, err := getStatus(ctx, n.b.HTTPURL(asker))
		if err != nil {
			return err
		}
		if v := st.voters(); slices.Contains(v, target) {
			return fmt.Errorf("%s still a voter: %v", target, v)
		}
		return nil
	})
	if err != nil {
		return desc, n.h.Now(), err
	}
	if err := n.b.Stop(ctx, target); err != nil {
		return desc, n.h.Now(), err
	}
	n.down[target] = true
	if err := n.b.Wipe(ctx, target); err != nil {
		return desc, n.h.Now(), err
	}
	if err := hold(); err != nil {
		return desc, n.h.Now(), err
	}
	healed := n.h.Now()
	return desc, healed, n.restart(ctx, target)
}

// HealAll undoes whatever is left: partitions healed, paused nodes
// continued, down nodes restarted. It is the first step of the final
// phase and also runs after a failed step.
func (n *Nemesis) HealAll(ctx context.Context) error {
	errs := []error{n.b.Heal(ctx)}
	for t := range n.paused {
		errs = append(errs, n.resume(ctx, t))
	}
	for _, t := range n.b.Nodes() {
		if n.down[t] {
			errs = append(errs, n.restart(ctx, t))
		}
	}
	return errors.Join(errs...)
}

// WaitHealthy waits until every node answers, all agree on one leader,
// the leader's Raft configuration has every node as a voter, every node is
// ready (knows the leader and applied what it committed) and passes the
// Probe. It returns the leader.
func (n *Nemesis) WaitHealthy(ctx context.Context) (string, error) {
	var leader string
	var crashed error
	known := len(n.b.Crashes(ctx))
	err := pollUntil(ctx, n.RecoverTimeout, func() error {
		leader = ""
		for _, name := range n.b.Nodes() {
			st, err := getStatus(ctx, n.b.HTTPURL(name))
			if err != nil {
				if c := n.b.Crashes(ctx); len(c) > known {
					// a node died by itself: it will not recover
					crashed = fmt.Errorf("node crash: %s", strings.Join(c[known:], "; "))
					return nil
				}
				return fmt.Errorf("%s: %w", name, err)
			}
			if st.LeaderID == "" {
				return fmt.Errorf("%s knows no leader", name)
			}
			if leader != "" && st.LeaderID != leader {
				return fmt.Errorf("%s follows %s, others %s", name, st.LeaderID, leader)
			}
			leader = st.LeaderID
			if st.LeaderID == name {
				if v := st.voters(); len(v) != len(n.b.Nodes()) {
					return fmt.Errorf("leader %s has voters %v", name, v)
				}
			}
			if !isReady(ctx, n.b.HTTPURL(name)) {
				return fmt.Errorf("%s not ready", name)
			}
		}
		if n.Probe != nil {
			for _, name := range n.b.Nodes() {
				if err := n.Probe(ctx, name); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
		}
		return nil
	})
	if err == nil {
		err = crashed
	}
	if err != nil {
		return "", fmt.Errorf("cluster not healthy: %w", err)
	}
	return leader, nil
}

// firstOther returns the first node in Pick order that is not the leader.
func firstOther(st Step, names []string, leader string) string {
	for _, i := range st.Pick {
		if names[i] != leader {
			return names[i]
		}
	}
	return names[st.Pick[0]]
}

// oneWay cuts the leader's traffic in one direction: leader -/-> others
// (followers stop hearing it and elect another; it still hears them) or
// others -/-> leader (it keeps sending heartbeats but gets no answers: it
// must step down by itself, as its lease runs out).
func oneWay(st Step, names []string, leader string) Partition {
	var p Partition
	for _, o := range others(names, []string{leader}) {
		if st.Leader {
			p.Cuts = append(p.Cuts, Cut{leader, o})
		} else {
			p.Cuts = append(p.Cuts, Cut{o, leader})
		}
	}
	return p
}

// ring cuts links so that every node still sees a majority, but not the
// same one (Jepsen's "majorities ring"). Nodes in Pick order form a ring;
// each keeps its links to the nodes within distance k, k the smallest that
// gives it a majority. Three nodes cannot form such a ring (each would see
// both others), so they get a bridge: the ends of the Pick order cannot
// talk, the middle node sees both.
func ring(st Step, names []string) Partition {
	order := make([]string, len(st.Pick))
	for i, j := range st.Pick {
		order[i] = names[j]
	}
	nn := len(order)
	var p Partition
	if nn == 3 {
		p.Cuts = bothWays(order[:1], order[2:])
		return p
	}
	majority := nn/2 + 1
	k := majority / 2 // each node sees itself and 2k neighbours: 2k+1 >= majority
	for i := range nn {
		for j := i + 1; j < nn; j++ {
			d := min(j-i, nn-(j-i))
			if d > k {
				p.Cuts = append(p.Cuts, Cut{order[i], order[j]}, Cut{order[j], order[i]})
			}
		}
	}
	return p
}

// sleepCtx waits d unless ctx ends first. The nemesis holds faults for a
// planned time; this is scheduling, not synchronisation.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pollUntil calls f until it returns nil, timeout passes (then it returns
// f's last error) or ctx ends.
func pollUntil(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		if cerr := sleepCtx(ctx, wait); cerr != nil {
			return errors.Join(cerr, err)
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
