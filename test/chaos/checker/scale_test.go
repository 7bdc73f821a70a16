package checker

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/flotilla/flotilla/broker"
)

// bigRun makes a clean run of n values from 5 concurrent producers (a few
// unknown outcomes, some landing late), each delivered to a durable d1
// that acks it and to an ordered o1: about 4n events.
func bigRun(n int) ([]Event, map[string]*broker.StateDump) {
	rng := rand.New(rand.NewPCG(uint64(n), 2))
	type commit struct {
		value string
		at    int64
	}
	var h []Event
	var commits []commit
	ts := make([]int64, 5)
	for i := range n {
		p := i % 5
		client := fmt.Sprintf("p%d", p+1)
		value := fmt.Sprintf("%s-%d", client, i)
		e := pub(client, value, 1, ts[p], ts[p]+1000+rng.Int64N(5000))
		stored := e.Call + rng.Int64N(e.Return-e.Call+1)
		if rng.IntN(20) == 0 {
			h = append(h, unknown(e))
			e = pub(client, value, 2, e.Return+1, e.Return+2000)
			if rng.IntN(2) == 0 {
				stored = e.Call - 500 + rng.Int64N(2000) // the first attempt landed, maybe late
				e.Duplicate = true
			} else {
				stored = e.Call + rng.Int64N(2000)
			}
		}
		h = append(h, e)
		ts[p] = e.Return + rng.Int64N(100)
		commits = append(commits, commit{value, stored})
	}
	slices.SortStableFunc(commits, func(a, b commit) int { return cmp.Compare(a.at, b.at) })
	pos := make(map[string]uint64, n)
	var read int64
	for i, c := range commits {
		seq := uint64(i + 1)
		pos[c.value] = seq
		read = max(read, c.at) + rng.Int64N(100)
		h = append(h, deliver("d1", seq, c.value, read, read+10), ack("d1", seq, read+20, read+30), deliver("o1", seq, c.value, read, read+5))
	}
	for i := range h {
		if h[i].Kind == EventPublish && h[i].Outcome == OutcomeOK {
			h[i].Seq = pos[h[i].Value]
		}
	}
	values := make([]string, len(commits))
	for i, c := range commits {
		values[i] = c.value
	}
	last := uint64(len(values))
	return h, nodes(logOf(values...), map[string]broker.DumpConsumer{
		"d1": {DeliveredConsumer: last, DeliveredStream: last, AckFloorConsumer: last, AckFloorStream: last},
	})
}

// TestCheck_Scale checks a clean 100k-event history in reasonable time.
func TestCheck_Scale(t *testing.T) {
	t.Parallel()
	h, final := bigRun(25000)
	start := time.Now()
	r := Check(h, final, Options{})
	t.Logf("%d events checked in %v", len(h), time.Since(start))
	if !r.OK() {
		t.Fatalf("clean run flagged:\n%s", r)
	}
	for _, w := range r.Stats.Linearizability {
		if w.Result != "ok" {
			t.Fatalf("%+v", w)
		}
	}
	if len(r.Stats.Linearizability) != 4 {
		t.Fatalf("%d linearizability checks, want exact + 3 windows", len(r.Stats.Linearizability))
	}
}

func BenchmarkCheck(b *testing.B) {
	h, final := bigRun(25000)
	b.ResetTimer()
	for b.Loop() {
		Check(h, final, Options{})
	}
}
