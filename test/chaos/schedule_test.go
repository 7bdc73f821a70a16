package chaos

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPlanSuite_SameSeedSameSchedule(t *testing.T) {
	t.Parallel()
	kinds := SupportedFaults(Capabilities{LinkFaults: true})
	a := PlanSuite(42, []int{3, 5}, kinds, time.Minute)
	b := PlanSuite(42, []int{3, 5}, kinds, time.Minute)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("seed 42 planned twice differently:\n%v\n%v", a, b)
	}
	c := PlanSuite(43, []int{3, 5}, kinds, time.Minute)
	if reflect.DeepEqual(a, c) {
		t.Fatal("seeds 42 and 43 planned the same suite")
	}
	if a[0].String() != b[0].String() {
		t.Fatal("printed schedules differ")
	}
}

func TestPlanSuite_EveryKindOnceAcrossSizes(t *testing.T) {
	t.Parallel()
	for _, caps := range []Capabilities{{LinkFaults: true}, {}} {
		kinds := SupportedFaults(caps)
		for seed := range uint64(20) {
			suite := PlanSuite(seed, []int{3, 5}, kinds, 0)
			seen := map[string]int{}
			for _, s := range suite {
				for _, st := range s.Steps {
					seen[st.Fault]++
					if len(st.Pick) != s.Nodes {
						t.Fatalf("seed %d: pick %v for %d nodes", seed, st.Pick, s.Nodes)
					}
					if st.Hold < 3*time.Second || st.Hold > 7*time.Second || st.Quiet < time.Second {
						t.Fatalf("seed %d: step %v out of bounds", seed, st)
					}
				}
			}
			for _, k := range kinds {
				if seen[k] != 1 {
					t.Fatalf("seed %d: %s scheduled %d times with a zero duration, want once", seed, k, seen[k])
				}
			}
			if len(seen) != len(kinds) {
				t.Fatalf("seed %d: kinds %v, want %v", seed, seen, kinds)
			}
		}
	}
}

func TestPlanSuite_DurationAddsFaults(t *testing.T) {
	t.Parallel()
	kinds := SupportedFaults(Capabilities{LinkFaults: true})
	short := PlanSuite(1, []int{3}, kinds, 0)[0]
	long := PlanSuite(1, []int{3}, kinds, 10*time.Minute)[0]
	if long.Estimate() < 10*time.Minute {
		t.Fatalf("10m schedule estimated at %s", long.Estimate())
	}
	if !reflect.DeepEqual(long.Steps[:len(short.Steps)], short.Steps) {
		t.Fatal("a longer run should start with the same required faults")
	}
}

func TestSupportedFaults_DockerHasNoLinkFaults(t *testing.T) {
	t.Parallel()
	got := SupportedFaults(Capabilities{})
	for _, k := range []string{FaultPartitionOneWay, FaultPartitionRing} {
		if slices.Contains(got, k) {
			t.Errorf("%s offered without link faults", k)
		}
	}
	if !slices.Contains(got, FaultPartitionHalves) || !slices.Contains(got, FaultIsolateLeader) {
		t.Errorf("whole-node partitions missing: %v", got)
	}
}

func TestMinority(t *testing.T) {
	t.Parallel()
	names := []string{"n1", "n2", "n3", "n4", "n5"}
	tests := []struct {
		st     Step
		leader string
		want   []string
	}{
		{Step{Pick: []int{4, 0, 1, 2, 3}, Leader: false}, "n5", []string{"n1", "n2"}},
		{Step{Pick: []int{4, 0, 1, 2, 3}, Leader: true}, "n5", []string{"n5", "n1"}},
		{Step{Pick: []int{2, 1, 0}, Leader: true}, "n1", []string{"n1"}},
		{Step{Pick: []int{0, 1, 2}, Leader: false}, "n1", []string{"n2"}},
	}
	for _, tc := range tests {
		got := minority(tc.st, names[:len(tc.st.Pick)], tc.leader)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("minority(%v, leader %s) = %v, want %v", tc.st, tc.leader, got, tc.want)
		}
	}
}

// reach returns, for every node, the nodes it can exchange messages with
// both ways under p (itself included).
func reach(names []string, p Partition) map[string][]string {
	cut := map[Cut]bool{}
	for _, c := range p.Cuts {
		cut[c] = true
	}
	out := map[string][]string{}
	for _, a := range names {
		for _, b := range names {
			if a == b || (!cut[Cut{a, b}] && !cut[Cut{b, a}]) {
				out[a] = append(out[a], b)
			}
		}
	}
	return out
}

func TestRing_EveryNodeSeesADifferentMajority(t *testing.T) {
	t.Parallel()
	for _, n := range []int{3, 5, 7} {
		names := []string{"n1", "n2", "n3", "n4", "n5", "n6", "n7"}[:n]
		pick := make([]int, n)
		for i := range pick {
			pick[i] = (i * 2) % n // any permutation (n is odd)
		}
		r := reach(names, ring(Step{Pick: pick}, names))
		views := map[string]bool{}
		for _, a := range names {
			if len(r[a]) < n/2+1 {
				t.Fatalf("%d nodes: %s sees only %v", n, a, r[a])
			}
			views[strings.Join(r[a], ",")] = true
		}
		if len(views) < 2 {
			t.Fatalf("%d nodes: every node sees the same %v: not a ring", n, views)
		}
		for _, a := range names {
			if len(r[a]) == n && n > 3 {
				t.Fatalf("%d nodes: %s sees everyone", n, a)
			}
		}
	}
}

func TestOneWay(t *testing.T) {
	t.Parallel()
	names := []string{"n1", "n2", "n3"}
	out := oneWay(Step{Leader: true}, names, "n2")
	if want := []Cut{{"n2", "n1"}, {"n2", "n3"}}; !reflect.DeepEqual(out.Cuts, want) {
		t.Fatalf("leader -/-> others: %v, want %v", out.Cuts, want)
	}
	in := oneWay(Step{Leader: false}, names, "n2")
	if want := []Cut{{"n1", "n2"}, {"n3", "n2"}}; !reflect.DeepEqual(in.Cuts, want) {
		t.Fatalf("others -/-> leader: %v, want %v", in.Cuts, want)
	}
	if got := out.String(); got != "n2 -/-> n1, n2 -/-> n3" {
		t.Fatalf("String() = %q", got)
	}
}

func TestPartitionString_TwoWay(t *testing.T) {
	t.Parallel()
	p := Partition{Cuts: bothWays([]string{"n1"}, []string{"n2", "n3"})}
	if got := p.String(); got != "n1 x n2, n1 x n3" {
		t.Fatalf("String() = %q", got)
	}
}

func TestSuiteFromEnv(t *testing.T) {
	t.Setenv("CHAOS_SEED", "12")
	t.Setenv("CHAOS_DURATION", "2m")
	t.Setenv("CHAOS_NODES", "5")
	t.Setenv("CHAOS_BACKEND", "docker")
	t.Setenv("CHAOS_FAULTS", "kill-leader,partition-ring")
	c, err := SuiteFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Seed != 12 || c.Duration != 2*time.Minute || !reflect.DeepEqual(c.Sizes, []int{5}) || c.Backend != "docker" {
		t.Fatalf("parsed %+v", c)
	}
	// the docker backend cannot cut single links
	if got := c.Kinds(Capabilities{}); !reflect.DeepEqual(got, []string{FaultKillLeader}) {
		t.Fatalf("kinds %v", got)
	}
	for k, v := range map[string]string{"CHAOS_NODES": "4", "CHAOS_SEED": "x", "CHAOS_BACKEND": "vm", "CHAOS_FAULTS": "flood", "CHAOS_DURATION": "soon"} {
		t.Run(k, func(t *testing.T) {
			t.Setenv(k, v)
			if _, err := SuiteFromEnv(); err == nil {
				t.Fatalf("%s=%s accepted", k, v)
			}
		})
	}
}
