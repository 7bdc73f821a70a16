package checker

import (
	"slices"
	"testing"
)

func TestCheckDense(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		seqs []uint64
		want []string
	}{
		{name: "dense", seqs: []uint64{1, 2, 3}},
		{name: "empty"},
		{name: "starts late", seqs: []uint64{2, 3}, want: []string{"n1: seqs 1..1 are missing (seq 2 follows 0)"}},
		{name: "hole", seqs: []uint64{1, 2, 5, 6}, want: []string{"n1: seqs 3..4 are missing (seq 5 follows 2)"}},
		{name: "repeat", seqs: []uint64{1, 2, 2, 3}, want: []string{"n1: seq 2 comes after seq 2 (repeated or out of order)"}},
		{name: "backwards", seqs: []uint64{1, 3, 2, 4}, want: []string{
			"n1: seqs 2..2 are missing (seq 3 follows 1)",
			"n1: seq 2 comes after seq 3 (repeated or out of order)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &checker{r: &Report{max: 10, Stats: Stats{ViolationCounts: map[string]int{}}}}
			l := &logClass{name: "n1"}
			for _, s := range tt.seqs {
				l.msgs = append(l.msgs, msg(s, "v"))
			}
			c.checkDense(l)
			var got []string
			for _, v := range c.r.Violations {
				if v.Kind != KindGap {
					t.Fatalf("kind %s", v.Kind)
				}
				got = append(got, v.Detail)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSeqRanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		seqs  []uint64
		limit int
		want  string
	}{
		{nil, 5, ""},
		{[]uint64{3}, 5, "3"},
		{[]uint64{3, 7, 8, 9, 12}, 5, "3, 7-9, 12"},
		{[]uint64{1, 3, 5, 7}, 2, "1, 3, ... (4 seqs in all)"},
	}
	for _, tt := range tests {
		if got := seqRanges(tt.seqs, tt.limit); got != tt.want {
			t.Errorf("seqRanges(%v, %d) = %q, want %q", tt.seqs, tt.limit, got, tt.want)
		}
	}
}
