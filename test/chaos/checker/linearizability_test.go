package checker

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomRun makes a random history of sequential producers with
// overlapping publishes, unknown outcomes (some landing after they timed
// out), definite failures, duplicate acks and an ordered reader, and the
// final log it leads to. With swap, two entries of the log trade places
// (acks follow the log; often neighbours, which overlap in time), which
// may or may not break linearizability.
func randomRun(rng *rand.Rand, swap bool) ([]Event, []string) {
	type commit struct {
		value string
		at    int64
	}
	var h []Event
	var commits []commit
	for p := range 1 + rng.IntN(4) {
		client := fmt.Sprintf("p%d", p+1)
		t := rng.Int64N(20)
		for v := range 1 + rng.IntN(8) {
			value := fmt.Sprintf("%s-%d", client, v)
			stored := int64(-1)
			for attempt := 1; ; attempt++ {
				e := pub(client, value, attempt, t, t+1+rng.Int64N(20))
				t = e.Return + rng.Int64N(5)
				r := rng.IntN(10)
				if r < 2 && attempt < 3 {
					if stored < 0 && rng.IntN(2) == 0 {
						stored = e.Call + rng.Int64N(40) // may land after the timeout
					}
					h = append(h, unknown(e))
					continue
				}
				if r < 3 && attempt < 3 && stored < 0 {
					h = append(h, fail(e, "no leader"))
					continue
				}
				if stored < 0 {
					stored = e.Call + rng.Int64N(e.Return-e.Call+1)
				} else {
					e.Duplicate = true
					e.Return = max(e.Return, stored)
					t = max(t, e.Return)
				}
				h = append(h, e)
				break
			}
			commits = append(commits, commit{value, stored})
		}
	}
	slices.SortStableFunc(commits, func(a, b commit) int { return cmp.Compare(a.at, b.at) })
	var read int64
	for i, c := range commits {
		read = max(read, c.at) + rng.Int64N(5)
		h = append(h, deliver("o1", uint64(i+1), "", read, read))
	}
	if swap && len(commits) > 1 {
		i, j := rng.IntN(len(commits)), rng.IntN(len(commits))
		if rng.IntN(2) == 0 { // neighbours: the borderline cases
			i = rng.IntN(len(commits) - 1)
			j = i + 1
		}
		commits[i], commits[j] = commits[j], commits[i]
	}
	pos := make(map[string]int)
	var log []string
	for i, c := range commits {
		pos[c.value] = i + 1
		log = append(log, c.value)
	}
	for i := range h {
		if h[i].Kind == EventPublish && h[i].Outcome == OutcomeOK {
			h[i].Seq = uint64(pos[h[i].Value])
		}
	}
	return h, log
}

// TestLinearizability_ExactAgreesWithPorcupine cross-checks the one-pass
// exact check against porcupine on whole random histories, and checks that
// porcupine on small windows never flags a history the exact check passes.
func TestLinearizability_ExactAgreesWithPorcupine(t *testing.T) {
	t.Parallel()
	illegal := 0
	for seed := range uint64(600) {
		rng := rand.New(rand.NewPCG(seed, 1))
		swap := seed%2 == 1
		h, log := randomRun(rng, swap)
		final := nodes(logOf(log...), nil)
		r := Check(h, final, Options{LinearizabilityWindow: 1000})
		lin := r.Stats.Linearizability
		if len(lin) != 2 || lin[0].Result != lin[1].Result {
			t.Fatalf("seed %d: exact and porcupine disagree: %+v\n%s", seed, lin, r)
		}
		if !swap && lin[0].Result != "ok" {
			t.Fatalf("seed %d: an unperturbed history is flagged\n%s", seed, r)
		}
		if lin[0].Result == "illegal" {
			illegal++
		}
		r = Check(h, final, Options{LinearizabilityWindow: 3, Seed: int64(seed)})
		for _, w := range r.Stats.Linearizability[1:] {
			if w.Result == "illegal" && r.Stats.Linearizability[0].Result == "ok" {
				t.Fatalf("seed %d: window %d..%d flagged a linearizable history\n%s", seed, w.FirstSeq, w.LastSeq, r)
			}
		}
	}
	if illegal < 60 || illegal > 280 {
		t.Fatalf("%d of 300 perturbed histories were illegal: the generator misses the borderline", illegal)
	}
	t.Logf("%d of 300 perturbed histories illegal", illegal)
}
