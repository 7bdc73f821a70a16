package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Fault kinds. Each names one way of hurting the cluster; docs/reliability.md
// describes them.
const (
	FaultKillLeader      = "kill-leader"      // SIGKILL the leader, restart it after Hold
	FaultKillRandom      = "kill-random"      // SIGKILL any node
	FaultKillMinority    = "kill-minority"    // SIGKILL (N-1)/2 nodes at once
	FaultKillAll         = "kill-all"         // SIGKILL every node at once, restart all
	FaultPauseLeader     = "pause-leader"     // SIGSTOP the leader for Hold, then SIGCONT
	FaultPauseMinority   = "pause-minority"   // SIGSTOP (N-1)/2 nodes
	FaultPauseKill       = "pause-then-kill"  // SIGSTOP a node, SIGKILL it while paused, restart
	FaultIsolateLeader   = "partition-leader" // cut the leader off from every peer
	FaultPartitionHalves = "partition-halves" // a minority | majority split
	FaultPartitionOneWay = "partition-oneway" // one node's traffic dropped in one direction only
	FaultPartitionRing   = "partition-ring"   // overlapping majorities (a bridge for 3 nodes)
	FaultRollingRestart  = "rolling-restart"  // SIGTERM and restart each node in turn
	FaultStopLeader      = "stop-leader"      // graceful SIGTERM of the leader, restart after Hold
	FaultMembership      = "membership"       // remove a follower, wipe it, add it back under load
)

// AllFaults lists every fault kind in a fixed order (the order seeds
// permute, so it must never change between runs of one version).
var AllFaults = []string{
	FaultKillLeader, FaultKillRandom, FaultKillMinority, FaultKillAll,
	FaultPauseLeader, FaultPauseMinority, FaultPauseKill,
	FaultIsolateLeader, FaultPartitionHalves, FaultPartitionOneWay, FaultPartitionRing,
	FaultRollingRestart, FaultStopLeader, FaultMembership,
}

// Step is one fault of a schedule. Everything random is drawn when the
// schedule is made, so a seed fixes the whole plan; only "the leader" is
// resolved when the step runs.
type Step struct {
	Fault string
	// Hold is how long the fault lasts before it is healed.
	Hold time.Duration
	// Quiet is how long the workload runs undisturbed after the cluster
	// recovered, before the next step.
	Quiet time.Duration
	// Pick is a permutation of node indexes: the random node, the
	// minority, the ring order and the restart order are taken from it.
	Pick []int
	// Leader says whether the leader is among the nodes hurt (minorities,
	// pause-then-kill) or, for partition-oneway, whether the leader's
	// outgoing traffic is cut (true) or its incoming traffic (false).
	Leader bool
}

// String describes the step for the printed schedule.
func (s Step) String() string {
	var extra string
	switch s.Fault {
	case FaultKillMinority, FaultPauseMinority, FaultPartitionHalves:
		extra = map[bool]string{true: "minority with the leader", false: "minority without the leader"}[s.Leader]
	case FaultPauseKill:
		extra = map[bool]string{true: "the leader", false: "a follower"}[s.Leader]
	case FaultPartitionOneWay:
		extra = map[bool]string{true: "leader -/-> others", false: "others -/-> leader"}[s.Leader]
	case FaultKillRandom, FaultPartitionRing, FaultRollingRestart:
		extra = fmt.Sprintf("order %v", s.Pick)
	}
	if extra != "" {
		extra = ", " + extra
	}
	hold := fmt.Sprintf("hold %4.1fs", s.Hold.Seconds())
	if s.Fault == FaultRollingRestart {
		hold = "one node at a time"
	}
	return fmt.Sprintf("%-17s %s quiet %3.1fs%s", s.Fault, hold, s.Quiet.Seconds(), extra)
}

// Schedule is the nemesis plan for one cluster.
type Schedule struct {
	Seed  uint64
	Nodes int
	Steps []Step
}

// Estimate is a rough duration of the schedule (faults, recoveries and
// quiet periods), for planning and the printed header.
func (s Schedule) Estimate() time.Duration {
	var d time.Duration
	for _, st := range s.Steps {
		d += stepEstimate(st, s.Nodes)
	}
	return d
}

// String prints the plan, one step per line.
func (s Schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "schedule: seed %d, %d nodes, %d faults, about %s\n", s.Seed, s.Nodes, len(s.Steps), s.Estimate().Round(time.Second))
	for i, st := range s.Steps {
		fmt.Fprintf(&b, "  %2d. %s\n", i+1, st)
	}
	return b.String()
}

// stepEstimate guesses how long one step takes, recovery included (from
// runs on a 2-core machine: a new leader within about a second, a
// restarted node ready within a few).
func stepEstimate(st Step, nodes int) time.Duration {
	recovery := 2 * time.Second
	switch st.Fault {
	case FaultKillAll:
		recovery = 4 * time.Second
	case FaultRollingRestart:
		return time.Duration(nodes)*2*time.Second + st.Quiet // no hold
	case FaultMembership:
		recovery = 8 * time.Second
	}
	return st.Hold + st.Quiet + recovery
}

// PlanSuite makes the schedules of one suite: one per cluster size. Every
// fault kind the backend supports runs at least once across the suite (the
// kinds are dealt out between the sizes in a seeded order), and each
// schedule is then filled with random faults until it is about duration
// long. The same seed, sizes and kinds give the same schedules.
func PlanSuite(seed uint64, sizes []int, kinds []string, duration time.Duration) []Schedule {
	deal := rand.New(rand.NewPCG(seed, 0))
	perm := deal.Perm(len(kinds))
	out := make([]Schedule, len(sizes))
	for i, n := range sizes {
		var required []string
		for j, k := range perm {
			if j%len(sizes) == i {
				required = append(required, kinds[k])
			}
		}
		out[i] = planOne(seed, n, required, kinds, duration)
	}
	return out
}

// planOne makes one cluster's schedule: the required kinds first (already
// in a seeded order), then random kinds until the estimate reaches
// duration.
func planOne(seed uint64, nodes int, required, kinds []string, duration time.Duration) Schedule {
	rng := rand.New(rand.NewPCG(seed, uint64(nodes)))
	s := Schedule{Seed: seed, Nodes: nodes}
	for _, k := range required {
		s.Steps = append(s.Steps, newStep(rng, k, nodes))
	}
	for s.Estimate() < duration {
		s.Steps = append(s.Steps, newStep(rng, kinds[rng.IntN(len(kinds))], nodes))
	}
	return s
}

func newStep(rng *rand.Rand, kind string, nodes int) Step {
	return Step{
		Fault:  kind,
		Hold:   time.Duration(30+rng.IntN(41)) * 100 * time.Millisecond, // 3.0-7.0 s
		Quiet:  time.Duration(10+rng.IntN(16)) * 100 * time.Millisecond, // 1.0-2.5 s
		Pick:   rng.Perm(nodes),
		Leader: rng.IntN(2) == 0,
	}
}

// SupportedFaults filters AllFaults down to what a backend can do.
func SupportedFaults(b Capabilities) []string {
	var out []string
	for _, k := range AllFaults {
		if (k == FaultPartitionOneWay || k == FaultPartitionRing) && !b.LinkFaults {
			continue
		}
		out = append(out, k)
	}
	return out
}

// Capabilities says which faults a backend can inject.
type Capabilities struct {
	// LinkFaults: individual links can be cut, per direction (the
	// process backend's fault-injection endpoints). Without it only whole
	// nodes can be cut off (docker network disconnect), which rules out
	// one-way and ring partitions.
	LinkFaults bool
}

// minority picks the nodes a minority fault hurts: (n-1)/2 of them, with
// or without the leader as the step says, the rest in Pick order.
func minority(st Step, names []string, leader string) []string {
	m := (len(names) - 1) / 2
	var out []string
	if st.Leader && leader != "" {
		out = append(out, leader)
	}
	for _, i := range st.Pick {
		if len(out) == m {
			break
		}
		if names[i] != leader {
			out = append(out, names[i])
		}
	}
	return out
}

// others returns names without the given ones, in order.
func others(names, without []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(without, n) {
			out = append(out, n)
		}
	}
	return out
}
