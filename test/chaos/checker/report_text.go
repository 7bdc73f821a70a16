package checker

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// String renders the report as readable text: the verdict, what was
// checked, every violation kept, and the availability tables.
func (r *Report) String() string {
	var b strings.Builder
	st := &r.Stats
	if r.OK() {
		b.WriteString("verdict: PASS (no violations)\n")
	} else {
		var counts []string
		total := 0
		for _, k := range sortedKeys(st.ViolationCounts) {
			counts = append(counts, fmt.Sprintf("%s %d", k, st.ViolationCounts[k]))
			total += st.ViolationCounts[k]
		}
		fmt.Fprintf(&b, "verdict: FAIL, %d violations (%s)\n", total, strings.Join(counts, ", "))
	}
	fmt.Fprintf(&b, "history: %d events; %d publish attempts (%d ok, %d failed, %d unknown) of %d values, %d acked; %d deliveries (%d late copies), %d acks\n",
		st.Events, st.PublishAttempts, st.OKAttempts, st.FailedAttempts, st.UnknownAttempts, st.Values, st.AckedValues, st.Deliveries, st.LateCopies, st.Acks)
	fmt.Fprintf(&b, "final state: nodes %v, reference %s with %d messages; lost %d, duplicated %d\n",
		st.Nodes, st.ReferenceNode, st.Stored, st.Lost, st.Duplicated)

	b.WriteString("\nlinearizability:\n")
	tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
	for _, w := range st.Linearizability {
		fmt.Fprintf(tw, "  %s\tseqs %d..%d\t%d ops\t%s\t%s\n", w.Method, w.FirstSeq, w.LastSeq, w.Ops, w.Result, w.Elapsed.Round(time.Microsecond))
	}
	tw.Flush()

	if !r.OK() {
		b.WriteString("\nviolations:\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "  [%s] %s\n", v.Kind, v.Detail)
		}
	}

	if len(st.Faults) > 0 {
		b.WriteString("\navailability per fault (attempts counted until the next fault):\n")
		tw = tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  start\tfault\tdescription\tunavailable\tattempts\terrors\tunknown")
		for _, f := range st.Faults {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\n", at(f.Start), f.Fault, f.Desc, unavailable(f.Unavailable, f.Recovered), f.Attempts, f.Errors, f.Unknown)
		}
		tw.Flush()
		b.WriteString("\nby fault kind:\n")
		tw = tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  fault\tcount\tmax unavailable\tnot recovered\tattempts\terrors\tunknown")
		for _, k := range st.FaultKinds {
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%d\t%d\t%d\n", k.Fault, k.Count, k.MaxUnavailable.Round(time.Millisecond), k.NotRecovered, k.Attempts, k.Errors, k.Unknown)
		}
		tw.Flush()
		fmt.Fprintf(&b, "max unavailability: %s (%s)\n", st.MaxUnavailable.Round(time.Millisecond), st.MaxUnavailableFault)
	}
	fmt.Fprintf(&b, "longest gap between ok publishes: %s from %s\n", st.LongestOKGap.Round(time.Millisecond), at(st.LongestOKGapStart))
	return b.String()
}

func unavailable(d time.Duration, recovered bool) string {
	if !recovered {
		return ">=" + d.Round(time.Millisecond).String() + " (never recovered)"
	}
	return d.Round(time.Millisecond).String()
}
