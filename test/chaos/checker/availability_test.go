package checker

import (
	"testing"
	"time"
)

func TestAvailability(t *testing.T) {
	t.Parallel()
	h := []Event{
		ok(pub("p1", "a", 1, 0, 10), 1),
		{Kind: EventNemesis, Client: "nemesis", Value: "kill leader n1", Fault: "kill-leader", Call: 100, Return: 400},
		unknown(pub("p1", "b", 1, 90, 200)), // called before the fault: not its attempt
		fail(pub("p1", "b", 2, 201, 210), "no leader"),
		unknown(pub("p1", "b", 3, 211, 300)),
		dup(pub("p1", "b", 4, 301, 350), 2),
		{Kind: EventNemesis, Client: "nemesis", Value: "partition [n1] | [n2 n3]", Fault: "partition-halves", Call: 500},
		unknown(pub("p1", "c", 1, 510, 600)),
		unknown(pub("p1", "c", 2, 601, 700)),
		{Kind: EventNemesis, Client: "nemesis", Value: "kill leader n2", Fault: "kill-leader", Call: 800, Return: 900},
		ok(pub("p2", "d", 1, 810, 1000), 3),
	}
	r := mustCheck(t, h, nodes(logOf("a", "b", "d"), nil), Options{})
	want := []FaultStats{
		{Fault: "kill-leader", Desc: "kill leader n1", Start: 100, End: 400, Unavailable: 250, Recovered: true, Attempts: 3, Errors: 1, Unknown: 1},
		{Fault: "partition-halves", Desc: "partition [n1] | [n2 n3]", Start: 500, Unavailable: 500, Recovered: true, Attempts: 2, Unknown: 2},
		{Fault: "kill-leader", Desc: "kill leader n2", Start: 800, End: 900, Unavailable: 200, Recovered: true, Attempts: 1},
	}
	if len(r.Stats.Faults) != len(want) {
		t.Fatalf("faults = %+v", r.Stats.Faults)
	}
	for i := range want {
		if r.Stats.Faults[i] != want[i] {
			t.Errorf("fault %d = %+v, want %+v", i, r.Stats.Faults[i], want[i])
		}
	}
	kinds := []FaultKindStats{
		{Fault: "kill-leader", Count: 2, MaxUnavailable: 250, Attempts: 4, Errors: 1, Unknown: 1},
		{Fault: "partition-halves", Count: 1, MaxUnavailable: 500, Attempts: 2, Unknown: 2},
	}
	for i := range kinds {
		if r.Stats.FaultKinds[i] != kinds[i] {
			t.Errorf("kind %d = %+v, want %+v", i, r.Stats.FaultKinds[i], kinds[i])
		}
	}
	st := r.Stats
	if st.MaxUnavailable != 500 || st.MaxUnavailableFault != "partition [n1] | [n2 n3]" {
		t.Errorf("max unavailable %v after %q", st.MaxUnavailable, st.MaxUnavailableFault)
	}
	if st.LongestOKGap != time.Duration(650) || st.LongestOKGapStart != 350 {
		t.Errorf("longest ok gap %v from %d", st.LongestOKGap, st.LongestOKGapStart)
	}
}

func TestAvailability_NeverRecovered(t *testing.T) {
	t.Parallel()
	h := []Event{
		ok(pub("p1", "a", 1, 0, 10), 1),
		{Kind: EventNemesis, Client: "nemesis", Value: "kill all", Fault: "kill-all", Call: 20},
		unknown(pub("p1", "b", 1, 30, 90)),
	}
	r := mustCheck(t, h, nodes(logOf("a"), nil), Options{})
	f := r.Stats.Faults[0]
	if f.Recovered || f.Unavailable != 70 || f.Unknown != 1 || r.Stats.FaultKinds[0].NotRecovered != 1 {
		t.Fatalf("fault = %+v", f)
	}
}
