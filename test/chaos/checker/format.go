package checker

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// never is the return time of an operation that may take effect at any
// time after its call (a publish with an unknown outcome).
const never = math.MaxInt64

// at renders a history time.
func at(ns int64) string {
	if ns == never {
		return "never"
	}
	return time.Duration(ns).String()
}

// seqRanges renders sorted seqs compactly ("3, 7-9, 12"), at most limit
// ranges.
func seqRanges(seqs []uint64, limit int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if n == limit {
			fmt.Fprintf(&b, ", ... (%d seqs in all)", len(seqs))
			break
		}
		if n > 0 {
			b.WriteString(", ")
		}
		if i == j {
			fmt.Fprintf(&b, "%d", seqs[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", seqs[i], seqs[j])
		}
		n++
		i = j + 1
	}
	return b.String()
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// attemptName names a publish attempt for a violation detail.
func attemptName(ev *Event) string {
	s := fmt.Sprintf("%s's publish of %q (attempt %d", ev.Client, ev.Value, ev.Attempt)
	if ev.Node != "" {
		s += " via " + ev.Node
	}
	return s + ")"
}
