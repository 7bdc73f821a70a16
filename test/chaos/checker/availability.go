package checker

import (
	"cmp"
	"slices"
	"sort"
	"time"
)

// availability fills the per-fault statistics. For each nemesis event:
// the time from its start until the first ok publish called after it
// started returned, and the publish attempts called from its start until
// the next nemesis event (their errors and unknown outcomes).
func (c *checker) availability() {
	type attempt struct {
		call, ret int64
		outcome   string
	}
	var all []attempt
	var okRets []int64
	for i := range c.h.ev {
		if e := &c.h.ev[i]; e.Kind == EventPublish {
			all = append(all, attempt{e.Call, e.Return, e.Outcome})
			if e.Outcome == OutcomeOK {
				okRets = append(okRets, e.Return)
			}
		}
	}
	slices.SortFunc(all, func(a, b attempt) int { return cmp.Compare(a.call, b.call) })
	// firstOK[i]: the earliest ok return among all[i:]; fails/unknowns[i]: counts in all[:i].
	firstOK := make([]int64, len(all)+1)
	fails, unknowns := make([]int, len(all)+1), make([]int, len(all)+1)
	firstOK[len(all)] = never
	for i := len(all) - 1; i >= 0; i-- {
		firstOK[i] = firstOK[i+1]
		if all[i].outcome == OutcomeOK {
			firstOK[i] = min(firstOK[i], all[i].ret)
		}
	}
	for i, a := range all {
		fails[i+1], unknowns[i+1] = fails[i], unknowns[i]
		switch a.outcome {
		case OutcomeFail:
			fails[i+1]++
		case OutcomeUnknown:
			unknowns[i+1]++
		}
	}
	from := func(t int64) int { return sort.Search(len(all), func(i int) bool { return all[i].call >= t }) }

	st := &c.r.Stats
	kinds := make(map[string]*FaultKindStats)
	for k, i := range c.h.nemeses {
		e := &c.h.ev[i]
		until := c.h.end + 1
		if k+1 < len(c.h.nemeses) {
			until = c.h.ev[c.h.nemeses[k+1]].Call
		}
		lo, hi := from(e.Call), from(until)
		fs := FaultStats{Fault: e.Fault, Desc: e.Value, Start: e.Call, End: e.Return,
			Attempts: max(hi-lo, 0), Errors: fails[max(hi, lo)] - fails[lo], Unknown: unknowns[max(hi, lo)] - unknowns[lo]}
		if firstOK[lo] != never {
			fs.Unavailable, fs.Recovered = time.Duration(firstOK[lo]-e.Call), true
		} else {
			fs.Unavailable = time.Duration(c.h.end - e.Call)
		}
		st.Faults = append(st.Faults, fs)
		if fs.Unavailable > st.MaxUnavailable {
			st.MaxUnavailable, st.MaxUnavailableFault = fs.Unavailable, fs.Desc
		}
		ks := kinds[e.Fault]
		if ks == nil {
			ks = &FaultKindStats{Fault: e.Fault}
			kinds[e.Fault] = ks
		}
		ks.Count++
		ks.MaxUnavailable = max(ks.MaxUnavailable, fs.Unavailable)
		ks.Attempts += fs.Attempts
		ks.Errors += fs.Errors
		ks.Unknown += fs.Unknown
		if !fs.Recovered {
			ks.NotRecovered++
		}
	}
	for _, k := range sortedKeys(kinds) {
		st.FaultKinds = append(st.FaultKinds, *kinds[k])
	}
	slices.Sort(okRets)
	for i := 1; i < len(okRets); i++ {
		if gap := time.Duration(okRets[i] - okRets[i-1]); gap > st.LongestOKGap {
			st.LongestOKGap, st.LongestOKGapStart = gap, okRets[i-1]
		}
	}
}
